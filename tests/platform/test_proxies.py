"""The client's address: X-Forwarded-For is believed from TRUSTED_PROXIES only, and then
its right-most hop that is not a trusted proxy is the client (uvicorn's rule)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, make_settings
from tests.factories import DEFAULT_PASSWORD, create_user
from tests.platform.live_server import LiveServer, live_server
from townsquare.main import create_app
from townsquare.proxies import TrustedProxies

LOGIN = "/api/v1/auth/login"


class TestRightMostUntrustedHop:
    trusted = TrustedProxies(["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"])

    @pytest.mark.parametrize(
        ("header", "client"),
        [
            ("203.0.113.9", ("203.0.113.9", 0)),
            # The client wrote the left part; the proxies appended what they saw.
            ("6.6.6.6, 203.0.113.9, 10.1.2.3", ("203.0.113.9", 0)),
            ("6.6.6.6,203.0.113.9,192.0.2.1,10.9.9.9", ("203.0.113.9", 0)),
            ("203.0.113.9:5123, 10.1.2.3", ("203.0.113.9", 5123)),
            ("[2001:db9::7]:443, 2001:db8::1", ("2001:db9::7", 443)),
            ("2001:db9::7", ("2001:db9::7", 0)),
            # Every hop a trusted proxy: the first is the best there is.
            ("10.0.0.1, 10.0.0.2", ("10.0.0.1", 0)),
            (" , ", None),
        ],
    )
    def test_client_from(self, header: str, client: tuple[str, int] | None) -> None:
        assert self.trusted.client_from(header) == client

    def test_ipv4_mapped_peer_is_trusted_like_its_ipv4(self) -> None:
        assert self.trusted.trusts("::ffff:10.2.3.4")
        assert not self.trusted.trusts("::ffff:11.2.3.4")
        assert not self.trusted.trusts("not-an-address")


@asynccontextmanager
async def _client(
    db: RolledBackDatabase, peer: str, **settings: object
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(**settings), database=db)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def _failed_logins(client: httpx.AsyncClient, forwarded: list[str]) -> list[int]:
    """One failed login per X-Forwarded-For value, each for another account (so only the
    per-address window can fill up)."""
    statuses = []
    for number, header in enumerate(forwarded):
        response = await client.post(
            LOGIN,
            json={"email": f"nobody{number}@example.org", "password": "wrong"},
            headers={"X-Forwarded-For": header},
        )
        statuses.append(response.status_code)
    return statuses


async def test_untrusted_peer_cannot_choose_its_rate_limit_key(db: RolledBackDatabase) -> None:
    async with _client(db, "10.0.0.5", RATE_LIMIT_LOGIN="2/minute") as client:
        statuses = await _failed_logins(client, ["1.1.1.1", "2.2.2.2", "3.3.3.3"])
    assert statuses == [401, 401, 429]


async def test_trusted_proxy_forwards_the_right_most_untrusted_hop(
    db: RolledBackDatabase,
) -> None:
    async with _client(
        db, "10.0.0.5", RATE_LIMIT_LOGIN="2/minute", TRUSTED_PROXIES=["10.0.0.0/8"]
    ) as client:
        # The client varies what it writes itself; the hop the proxy appended is the key.
        spoofed = await _failed_logins(
            client, ["7.7.7.1, 203.0.113.9", "7.7.7.2, 203.0.113.9", "7.7.7.3, 203.0.113.9"]
        )
        other_client = await _failed_logins(client, ["198.51.100.4"])
    assert spoofed == [401, 401, 429]
    assert other_client == [401]


async def test_session_records_the_forwarded_address(
    db: RolledBackDatabase, session: AsyncSession
) -> None:
    user = await create_user(session, email="ada@example.org")
    async with _client(db, "10.0.0.5", TRUSTED_PROXIES=["10.0.0.5"]) as client:
        login = await client.post(
            LOGIN,
            json={"email": user.email, "password": DEFAULT_PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.5", "X-Forwarded-Proto": "https"},
        )
        assert login.status_code == 200, login.text
        sessions = await client.get(LOGIN.replace("login", "sessions"))
    assert [item["ip"] for item in sessions.json()["items"]] == ["203.0.113.9"]


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(
    db: RolledBackDatabase, session: AsyncSession
) -> None:
    user = await create_user(session, email="bob@example.org")
    async with _client(db, "192.0.2.50", TRUSTED_PROXIES=["10.0.0.0/8"]) as client:
        login = await client.post(
            LOGIN,
            json={"email": user.email, "password": DEFAULT_PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert login.status_code == 200, login.text
        sessions = await client.get(LOGIN.replace("login", "sessions"))
    assert [item["ip"] for item in sessions.json()["items"]] == ["192.0.2.50"]


# --- the served app: `townsquare serve` no longer trusts 127.0.0.1 by default -------------


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("proxies"), RATE_LIMIT_LOGIN="2/minute") as server:
        yield server


def _served_logins(server: LiveServer, forwarded: list[str]) -> list[int]:
    statuses = []
    with httpx.Client(base_url=server.base_url) as client:
        for number, header in enumerate(forwarded):
            response = client.post(
                LOGIN,
                json={"email": f"served{number}@example.org", "password": "wrong"},
                headers={"X-Forwarded-For": header},
            )
            statuses.append(response.status_code)
    return statuses


def test_served_on_localhost_a_client_cannot_spoof_its_address(
    default_server: LiveServer,
) -> None:
    assert _served_logins(default_server, ["1.1.1.1", "2.2.2.2", "3.3.3.3"]) == [401, 401, 429]


def test_served_behind_a_trusted_local_proxy(tmp_path: Path) -> None:
    with live_server(tmp_path, RATE_LIMIT_LOGIN="2/minute", TRUSTED_PROXIES="127.0.0.1") as server:
        assert _served_logins(server, ["1.1.1.1", "2.2.2.2", "3.3.3.3"]) == [401, 401, 401]
