"""The floor of the chat benchmark: the least a server can do for send → deliver.

A bare ASGI app (no framework, no middleware) on asyncpg, run under uvicorn like
Townsquare (`uvicorn chat_floor:app --workers 1`), talking to the same database:

- `GET /api/v1/ws`: the session cookie's SHA-256 looked up in `user_sessions` once per
  handshake (with the user's name and the organizations where they are an agent), then
  the socket joins the same channels as Townsquare's (`user:<id>`, and `org:<id>` for each
  organization whose inbox they work), gets `{"type": "ready"}`, and from then on every
  event of those channels: a bounded queue per socket drained by the socket's own task
  (full: closed with 1013, as Townsquare does).
- `POST /api/v1/orgs/{org}/conversations/{id}/messages` (`{body, client_msg_id?}`): the
  caller from the cookie (remembered per token after the first request), then in one
  transaction `UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1 RETURNING
  last_seq` (with the conversation's organization and customer) and the `INSERT` of the
  message; after the commit the message is encoded once and handed to the sockets of the
  organization's agents and of the conversation's customer, and answered with 201 and the
  same JSON shape as Townsquare's.

No heartbeat, no CSRF or Origin check, no read cursors, no access re-check: what is left
is the work no chat server can skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DSN = os.environ.get("FLOOR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
POOL_SIZE = int(os.environ.get("FLOOR_POOL_SIZE", "10"))
SESSION_COOKIE = os.environ.get("FLOOR_SESSION_COOKIE", "townsquare_session")
QUEUE_SIZE = 1000
TRY_AGAIN_LATER = 1013
NOT_AUTHENTICATED = 4401
_SEND_PATH = re.compile(r"^/api/v1/orgs/[^/]+/conversations/([0-9a-fA-F-]{36})/messages$")
_CALLER_SQL = """
SELECT u.id, u.display_name,
       coalesce(array_agg(m.organization_id) FILTER (WHERE m.organization_id IS NOT NULL),
                '{}') AS agent_of
FROM user_sessions s
JOIN users u ON u.id = s.user_id
LEFT JOIN memberships m ON m.user_id = u.id AND m.role IN ('owner', 'admin', 'agent')
     AND EXISTS (SELECT 1 FROM organization_modules om
                 WHERE om.organization_id = m.organization_id AND om.module = 'support')
WHERE s.token_hash = $1 AND s.expires_at > now()
GROUP BY u.id, u.display_name
"""
_NEXT_SEQ_SQL = """
UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1
RETURNING last_seq, organization_id, customer_id
"""
_INSERT_SQL = """
INSERT INTO chat_messages (id, conversation_id, organization_id, seq, sender_id, sender_role,
                           type, body, internal, client_msg_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, 'text', $7, false, $8, $9, $9)
"""


@dataclass(frozen=True)
class Caller:
    user_id: uuid.UUID
    display_name: str
    agent_of: frozenset[uuid.UUID]


class Socket:
    """One socket's bounded queue of event texts; `None` ends its drain loop."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
        self.stopped = False
        self.overflowed = False

    def put(self, text: str) -> None:
        if self.stopped:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True
            self.stop()

    def stop(self) -> None:
        self.stopped = True
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class Floor:
    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.channels: dict[str, set[Socket]] = {}
        self.callers: dict[str, Caller] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- who is calling ------------------------------------------------------------------

    async def caller(self, scope: Scope, *, remember: bool) -> Caller | None:
        token = _cookie(scope, SESSION_COOKIE)
        if token is None:
            return None
        known = self.callers.get(token)
        if known is not None:
            return known
        assert self.pool is not None
        digest = hashlib.sha256(token.encode()).hexdigest()
        row = await self.pool.fetchrow(_CALLER_SQL, digest)
        if row is None:
            return None
        found = Caller(row["id"], row["display_name"], frozenset(row["agent_of"]))
        if remember:
            self.callers[token] = found
        return found

    # --- HTTP ----------------------------------------------------------------------------

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"]
        if scope["method"] == "GET" and path == "/healthz":
            await _respond(send, 200, b'{"status":"ok"}')
            return
        matched = _SEND_PATH.match(path)
        if scope["method"] != "POST" or matched is None:
            await _respond(send, 404, b'{"code":"not_found"}')
            return
        caller = await self.caller(scope, remember=True)
        if caller is None:
            await _respond(send, 401, b'{"code":"not_authenticated"}')
            return
        try:
            payload = json.loads(body)
            text = str(payload["body"])
            client_msg_id = payload.get("client_msg_id")
            conversation_id = uuid.UUID(matched.group(1))
        except (ValueError, KeyError, TypeError):
            await _respond(send, 422, b'{"code":"validation_failed"}')
            return
        message = await self.append(caller, conversation_id, text, client_msg_id)
        if message is None:
            await _respond(send, 404, b'{"code":"conversation_not_found"}')
            return
        data, organization_id, customer_id = message
        event = json.dumps({"type": "message.created", "data": data})
        receivers = self.channels.get(f"org:{organization_id}", set()) | self.channels.get(
            f"user:{customer_id}", set()
        )
        for socket in receivers:
            socket.put(event)
        await _respond(send, 201, json.dumps(data).encode())

    async def append(
        self, caller: Caller, conversation_id: uuid.UUID, text: str, client_msg_id: str | None
    ) -> tuple[dict[str, Any], uuid.UUID, uuid.UUID] | None:
        assert self.pool is not None
        message_id = uuid.uuid4()
        now = datetime.now(UTC)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(_NEXT_SEQ_SQL, conversation_id)
                if row is None:
                    return None
                organization_id, customer_id = row["organization_id"], row["customer_id"]
                if caller.user_id == customer_id:
                    role = "customer"
                elif organization_id in caller.agent_of:
                    role = "agent"
                else:
                    # Not the caller's conversation: roll the seq back.
                    raise _NotFound
                seq = row["last_seq"]
                await conn.execute(
                    _INSERT_SQL,
                    *(message_id, conversation_id, organization_id, seq, caller.user_id, role),
                    *(text, client_msg_id, now),
                )
        except _NotFound:
            return None
        data = {
            "id": str(message_id),
            "conversation_id": str(conversation_id),
            "seq": seq,
            "type": "text",
            "system_event": None,
            "sender": {
                "id": str(caller.user_id),
                "display_name": caller.display_name,
                "role": role,
            },
            "body": text,
            "internal": False,
            "attachment": None,
            "client_msg_id": client_msg_id,
            "created_at": now.isoformat().replace("+00:00", "Z"),
        }
        return data, organization_id, customer_id

    # --- WebSocket -----------------------------------------------------------------------

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        caller = await self.caller(scope, remember=False)
        await send({"type": "websocket.accept"})
        if caller is None:
            await send({"type": "websocket.close", "code": NOT_AUTHENTICATED})
            return
        socket = Socket()
        channels = [f"user:{caller.user_id}", *(f"org:{org}" for org in caller.agent_of)]
        for channel in channels:
            self.channels.setdefault(channel, set()).add(socket)
        ready = {
            "user_id": str(caller.user_id),
            "agent_of": sorted(str(org) for org in caller.agent_of),
        }
        listener = asyncio.create_task(_listen(receive, send, socket))
        try:
            await send(
                {"type": "websocket.send", "text": json.dumps({"type": "ready", "data": ready})}
            )
            while (text := await socket.queue.get()) is not None:
                await send({"type": "websocket.send", "text": text})
            if socket.overflowed:
                await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})
        except OSError:
            pass
        finally:
            for channel in channels:
                self.channels.get(channel, set()).discard(socket)
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await listener


class _NotFound(Exception):
    pass


async def _listen(receive: Receive, send: Send, socket: Socket) -> None:
    """The client's frames: answer `ping`, stop the socket when the client leaves."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            socket.stop()
            return
        if message.get("text") and '"ping"' in message["text"]:
            await send({"type": "websocket.send", "text": '{"type":"pong","data":{}}'})


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope["headers"]:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie_name, _, cookie_value = part.strip().partition("=")
                if cookie_name == name:
                    return cookie_value
    return None


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = Floor()
