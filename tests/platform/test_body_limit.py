"""Request bodies are bounded while read: 413 `payload_too_large`, never buffered.

In process for the rules (declared length, chunked bodies, the setting, the uploads' own
limits); against a real `townsquare serve` for the memory figure: a 300 MiB anonymous body
to the login endpoint is refused while the server's resident set stays flat."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, make_settings
from tests.factories import create_user, sign_in
from tests.platform.live_server import LiveServer, live_server
from townsquare.main import create_app

MiB = 1024 * 1024
LOGIN = "/api/v1/auth/login"


def _assert_too_large(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "payload_too_large"
    assert str(limit) in body["detail"]


def _login_body(size: int) -> bytes:
    """A syntactically valid login body of exactly `size` bytes (the password is padded)."""
    head, tail = b'{"email": "a@example.org", "password": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


class TestInProcess:
    async def test_twenty_mib_json_body_is_413_not_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            LOGIN, content=_login_body(20 * MiB), headers={"Content-Type": "application/json"}
        )
        _assert_too_large(response, MiB)

    async def test_chunked_body_is_counted_as_it_arrives(self, client: httpx.AsyncClient) -> None:
        sent = 0

        async def chunks() -> AsyncIterator[bytes]:
            nonlocal sent
            for _ in range(64):
                sent += 64 * 1024
                yield b" " * (64 * 1024)

        response = await client.post(
            LOGIN, content=chunks(), headers={"Content-Type": "application/json"}
        )
        _assert_too_large(response, MiB)
        assert "content-length" not in response.request.headers
        # Refused once past the limit: the rest of the stream was never asked for.
        assert sent <= MiB + 2 * 64 * 1024

    async def test_limit_is_a_setting(self, db: RolledBackDatabase) -> None:
        app = create_app(make_settings(MAX_JSON_BODY_BYTES=150), database=db)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50200))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                at_limit = await client.post(
                    LOGIN, content=_login_body(150), headers={"Content-Type": "application/json"}
                )
                over = await client.post(
                    LOGIN, content=_login_body(151), headers={"Content-Type": "application/json"}
                )
        # At the limit the body is read and judged (a wrong password, no account).
        assert at_limit.status_code == 401, at_limit.text
        _assert_too_large(over, 150)

    async def test_signed_in_routes_are_bounded_too(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        await sign_in(session, client, await create_user(session))
        response = await client.patch(
            "/api/v1/auth/me",
            content=b'{"display_name": "' + b"a" * (2 * MiB) + b'"}',
            headers={"Content-Type": "application/json"},
        )
        _assert_too_large(response, MiB)

    async def test_unknown_route_with_big_body_is_still_bounded(
        self, client: httpx.AsyncClient
    ) -> None:
        # A route that never reads its body answers as usual; nothing was buffered.
        response = await client.post("/api/v1/no-such-thing", content=b"x" * (2 * MiB))
        assert response.status_code == 404

    async def test_request_id_and_cors_headers_on_413(self, db: RolledBackDatabase) -> None:
        app = create_app(
            make_settings(ALLOWED_ORIGINS=["https://app.example"], MAX_JSON_BODY_BYTES=100),
            database=db,
        )
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50201))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.post(
                    LOGIN,
                    content=_login_body(500),
                    headers={"Content-Type": "application/json", "Origin": "https://app.example"},
                )
        _assert_too_large(response, 100)
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert response.json()["request_id"] == response.headers["x-request-id"]


# --- against a real server -------------------------------------------------------------

BIG = 300 * MiB
CHUNK = MiB
GROWTH_LIMIT = 8 * MiB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("body-limit")) as running:
        yield running


class PeakResidentSet:
    """The server's highest resident set while the block runs, sampled every 2 ms."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.baseline = self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.server.resident_bytes())
            time.sleep(0.002)

    def __enter__(self) -> PeakResidentSet:
        self.baseline = self.peak = self.server.resident_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def _send_big_body(server: LiveServer, *, chunked: bool) -> tuple[int, dict[str, object], int]:
    """POST 300 MiB of zeros to the login endpoint over a raw socket (writing everything
    unless the server hangs up); the answer's status, its JSON body and the bytes sent."""
    framing = b"Transfer-Encoding: chunked" if chunked else f"Content-Length: {BIG}".encode()
    head = (
        (
            f"POST {LOGIN} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        + framing
        + b"\r\n\r\n"
    )
    block = b"0" * CHUNK
    if chunked:
        block = f"{CHUNK:x}\r\n".encode() + block + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(head)
        try:
            for _ in range(BIG // CHUNK):
                conn.sendall(block)
                sent += CHUNK
            if chunked:
                conn.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while b"\r\n\r\n" not in answer or not _complete(answer):
            data = conn.recv(65536)
            if not data:
                break
            answer += data
    headers, _, body = answer.partition(b"\r\n\r\n")
    status = int(headers.split(b" ", 2)[1])
    return status, json.loads(body), sent


def _complete(answer: bytes) -> bool:
    headers, _, body = answer.partition(b"\r\n\r\n")
    for line in headers.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_300_mib_anonymous_login_body_keeps_the_server_flat(
    server: LiveServer, chunked: bool
) -> None:
    # Warm up: the login route's first request imports and builds what it needs.
    warm = httpx.post(f"{server.base_url}{LOGIN}", json={"email": "a@example.org", "password": "x"})
    assert warm.status_code in (401, 422), warm.text
    with PeakResidentSet(server) as rss:
        started = time.monotonic()
        status, body, sent = _send_big_body(server, chunked=chunked)
        elapsed = time.monotonic() - started
    assert status == 413
    assert body["code"] == "payload_too_large"
    print(
        f"\n300 MiB {'chunked' if chunked else 'declared'} body: sent {sent / MiB:.0f} MiB in "
        f"{elapsed:.2f} s, server RSS {rss.baseline / MiB:.1f} -> peak {rss.peak / MiB:.1f} MiB "
        f"(+{rss.growth / MiB:.1f} MiB)"
    )
    assert rss.growth < GROWTH_LIMIT, f"server grew by {rss.growth / MiB:.1f} MiB"
