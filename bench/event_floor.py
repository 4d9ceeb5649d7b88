"""The floor of shift signups: a raw ASGI app doing Townsquare's signup by hand on asyncpg.

No framework, no ORM, no middleware. It answers

    POST /api/v1/orgs/{org}/events/{event_id}/shifts/{shift_id}/signups

like Townsquare: the session cookie and its CSRF header checked (the same SHA-256 digest and
HMAC, so the same sessions work on both servers), membership and the `events` module
checked in the same query, then ONE conditional statement that takes a place and inserts
the signup: an UPDATE of the shift's `confirmed_count` guarded by `confirmed_count <
capacity` (PostgreSQL re-checks the guard on the locked row, so capacity is exact), the
event published, the shift neither cancelled nor started, no active signup of the person on
it and none overlapping it, chained to the INSERT by a CTE, in autocommit. 201 with the
signup's JSON; 409 `shift_full` (or another reason) when nothing was inserted.

    GET /healthz   200 (readiness)

Run: FLOOR_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/townsquare_bench_signups \
     FLOOR_SECRET_KEY=... .venv/bin/uvicorn event_floor:app --app-dir bench --workers 2
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic_core import to_json

PREFIX = "/api/v1/orgs/"
COOKIE = os.environ.get("FLOOR_SESSION_COOKIE", "townsquare_session")
CSRF_HEADER = b"x-csrf-token"

CALLER = """
SELECT u.id, u.display_name,
       (SELECT m.role FROM memberships m JOIN organizations o ON o.id = m.organization_id
        WHERE o.slug = $2 AND m.user_id = u.id) AS role,
       (SELECT o.id FROM organizations o
        JOIN organization_modules om ON om.organization_id = o.id AND om.module = 'events'
        WHERE o.slug = $2) AS org_id
FROM user_sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_hash = $1 AND s.expires_at > now() AND u.is_active
"""

TAKE_PLACE = """
WITH taken AS (
    UPDATE shifts AS sh
    SET confirmed_count = sh.confirmed_count + 1, updated_at = now()
    WHERE sh.id = $1 AND sh.event_id = $2 AND sh.organization_id = $3
      AND sh.confirmed_count < sh.capacity
      AND sh.cancelled_at IS NULL AND sh.starts_at > now()
      AND EXISTS (SELECT 1 FROM events e WHERE e.id = $2 AND e.status = 'published')
      AND NOT EXISTS (
          SELECT 1 FROM signups x
          WHERE x.shift_id = $1 AND x.user_id = $4 AND x.status IN ('confirmed', 'waitlisted'))
      AND NOT EXISTS (
          SELECT 1 FROM signups x JOIN shifts o ON o.id = x.shift_id
          WHERE x.user_id = $4 AND x.status IN ('confirmed', 'waitlisted') AND o.id <> $1
            AND o.cancelled_at IS NULL AND o.starts_at < sh.ends_at AND o.ends_at > sh.starts_at)
    RETURNING sh.id, sh.organization_id, sh.event_id
)
INSERT INTO signups (id, organization_id, event_id, shift_id, user_id, status, confirmed_at,
                     created_at, updated_at)
SELECT gen_random_uuid(), organization_id, event_id, id, $4, 'confirmed', now(), now(), now()
FROM taken
RETURNING id, created_at, confirmed_at
"""

WHY_NOT = "SELECT confirmed_count >= capacity FROM shifts WHERE id = $1 AND event_id = $2"

_pool: asyncpg.Pool | None = None
_secret = os.environ.get("FLOOR_SECRET_KEY", "").encode()


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _problem(status: int, code: str, title: str) -> tuple[int, dict[str, Any]]:
    return status, {"title": title, "status": status, "code": code}


def _cookie(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    token = csrf = None
    for name, value in headers:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, item = part.strip().partition("=")
                if key == COOKIE:
                    token = item
        elif name == CSRF_HEADER:
            csrf = value.decode("latin-1")
    return token, csrf


def _csrf_for(token_hash: str) -> str:
    mac = hmac.new(_secret, b"townsquare-csrf:" + token_hash.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


async def sign_up(
    pool: asyncpg.Pool, headers: list[tuple[bytes, bytes]], org: str, event: str, shift: str
) -> tuple[int, dict[str, Any]]:
    token, csrf = _cookie(headers)
    if not token:
        return _problem(401, "not_authenticated", "Not authenticated")
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    async with pool.acquire() as conn:
        caller = await conn.fetchrow(CALLER, token_hash, org)
        if caller is None:
            return _problem(401, "not_authenticated", "Not authenticated")
        if not csrf or not hmac.compare_digest(_csrf_for(token_hash), csrf):
            return _problem(403, "csrf_failed", "CSRF check failed")
        if caller["org_id"] is None or caller["role"] is None:
            return _problem(404, "organization_not_found", "Organization not found")
        try:
            row = await conn.fetchrow(TAKE_PLACE, shift, event, caller["org_id"], caller["id"])
        except asyncpg.UniqueViolationError:
            return _problem(409, "already_signed_up", "Already signed up")
        except asyncpg.DataError:
            return _problem(404, "shift_not_found", "Shift not found")
        if row is None:
            full = await conn.fetchval(WHY_NOT, shift, event)
            if full is None:
                return _problem(404, "shift_not_found", "Shift not found")
            if full:
                return _problem(409, "shift_full", "Shift full")
            return _problem(409, "signup_closed", "Signup not possible")
    return 201, {
        "id": str(row["id"]),
        "event_id": event,
        "shift_id": shift,
        "user": {"id": str(caller["id"]), "display_name": caller["display_name"]},
        "status": "confirmed",
        "position": None,
        "created_at": iso(row["created_at"]),
        "confirmed_at": iso(row["confirmed_at"]),
        "cancelled_at": None,
    }


async def _no_reset(_connection: asyncpg.Connection) -> None:
    return None


async def _lifespan(receive: Any, send: Any) -> None:
    global _pool
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            size = int(os.environ.get("FLOOR_POOL_SIZE", "10"))
            _pool = await asyncpg.create_pool(
                os.environ["FLOOR_DATABASE_URL"], min_size=1, max_size=size, reset=_no_reset
            )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(send: Any, status: int, body: bytes, media_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", media_type), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Any) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    await _drain(receive)
    path: str = scope["path"]
    if path == "/healthz":
        await _respond(send, 200, b'{"status":"ok"}', b"application/json")
        return
    parts = path[len(PREFIX) :].split("/") if path.startswith(PREFIX) else []
    # {org}/events/{event_id}/shifts/{shift_id}/signups
    if (
        scope["method"] != "POST"
        or len(parts) != 6
        or parts[1] != "events"
        or parts[3] != "shifts"
        or parts[5] != "signups"
    ):
        status, body = _problem(404, "not_found", "Not found")
    else:
        assert _pool is not None
        status, body = await sign_up(_pool, scope["headers"], parts[0], parts[2], parts[4])
    media = b"application/json" if status < 400 else b"application/problem+json"
    await _respond(send, status, to_json(body), media)
