"""The upload floor: a bare ASGI app that writes a multipart upload's file straight to disk.

No framework, no middleware, no database, no type check: `POST /upload` with a
multipart/form-data body whose first part is the file. The only parsing is a minimal
boundary scan, so what lands on disk is exactly the file's bytes (the benchmark compares
them with what Townsquare stored): skip the part's headers up to the first blank line,
hold back the last few bytes of each chunk, and at the end cut at the closing delimiter.
Chunks are written with a blocking `os.write` on the event loop (the page cache takes a
64-256 KiB chunk in microseconds; a thread hop per chunk would cost more than the write).

    GET  /healthz   200 {"status":"ok"}
    POST /upload    201 {"size": <file bytes>, "name": ..., "messages": <http.request count>},
                    400 when the body is not such a form

Run: FLOOR_MEDIA_DIR=/tmp/floor .venv/bin/uvicorn media_floor:app --app-dir bench --port 8012
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

_HEADERS_END = b"\r\n\r\n"
_MAX_PART_HEADERS = 16 * 1024


class _FileScan:
    """Where the file's bytes are in a single-part form's body, chunk by chunk."""

    def __init__(self, boundary: bytes) -> None:
        self.delimiter = b"\r\n--" + boundary
        # Enough to always hold the closing `\r\n--BOUNDARY--\r\n` back from the file.
        self.hold = len(self.delimiter) + 4
        self.head = bytearray()
        self.in_file = False
        self.tail = b""

    def feed(self, data: bytes) -> list[bytes | memoryview]:
        """The file bytes that are certain so far."""
        if not self.in_file:
            self.head += data
            end = self.head.find(_HEADERS_END)
            if end < 0:
                if len(self.head) > _MAX_PART_HEADERS:
                    raise ValueError("no part headers")
                return []
            self.in_file = True
            data = bytes(self.head[end + len(_HEADERS_END) :])
            self.head.clear()
        if len(data) >= self.hold:
            out: list[bytes | memoryview] = [self.tail, memoryview(data)[: len(data) - self.hold]]
            self.tail = data[-self.hold :]
            return out
        joined = self.tail + data
        self.tail = joined[-self.hold :]
        return [joined[: -self.hold]]

    def close(self) -> bytes:
        """The last file bytes, before the closing delimiter."""
        end = self.tail.rfind(self.delimiter)
        if not self.in_file or end < 0:
            raise ValueError("no closing boundary")
        return self.tail[:end]


def _boundary(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"content-type":
            kind, _, rest = value.partition(b";")
            if kind.strip().lower() != b"multipart/form-data":
                return None
            for option in rest.split(b";"):
                key, _, found = option.strip().partition(b"=")
                if key.lower() == b"boundary" and found:
                    return found.strip(b'"')
    return None


def _write_all(fd: int, data: bytes | memoryview) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return len(data)


async def _answer(send: Any, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _upload(scope: dict[str, Any], receive: Any, send: Any, root: Path) -> None:
    boundary = _boundary(scope["headers"])
    if boundary is None:
        await _answer(send, 400, {"error": "not multipart/form-data"})
        return
    scan = _FileScan(boundary)
    name = uuid.uuid4().hex
    partial = root / f".{name}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = messages = 0
    try:
        more = True
        while more:
            message = await receive()
            messages += 1
            if message["type"] == "http.disconnect":
                raise ConnectionError("client went away")
            more = message.get("more_body", False)
            for piece in scan.feed(message.get("body", b"")):
                size += _write_all(fd, piece)
        size += _write_all(fd, scan.close())
    except (ValueError, ConnectionError) as exc:
        os.close(fd)
        partial.unlink()
        with contextlib.suppress(OSError):
            await _answer(send, 400, {"error": str(exc)})
        return
    except BaseException:
        os.close(fd)
        partial.unlink()
        raise
    os.close(fd)
    os.replace(partial, root / name)
    await _answer(send, 201, {"size": size, "name": name, "messages": messages})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                root = Path(os.environ.get("FLOOR_MEDIA_DIR", "./var/floor-media"))
                root.mkdir(parents=True, exist_ok=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    root = Path(os.environ.get("FLOOR_MEDIA_DIR", "./var/floor-media"))
    if scope["method"] == "POST" and scope["path"] == "/upload":
        await _upload(scope, receive, send, root)
    elif scope["method"] == "GET" and scope["path"] == "/healthz":
        await _answer(send, 200, {"status": "ok"})
    else:
        await _answer(send, 404, {"error": "not found"})
