"""The floor: the public article reads as a raw ASGI app with asyncpg and hand-written SQL.

No framework, no ORM, no middleware: it answers the same requests as Townsquare with the
same JSON bytes, so the benchmark can print Townsquare's cost relative to it.

    GET /api/v1/public/orgs/{org}/articles?cursor=&limit=   (keyset cursor, Townsquare's format)
    GET /api/v1/public/orgs/{org}/articles/{slug}

Semantics kept from Townsquare: an org that does not exist or has the `cms` module off
answers 404 (checked inside the read; an empty page costs a second query to tell "no
articles" from "no such org"), only published articles, newest first by
`(published_at, id)`, `limit` 1..100 (default 20), a malformed cursor answers 400.

Run: FLOOR_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/ts_bench \
     .venv/bin/uvicorn floor:app --app-dir bench --workers 2 --port 8011 --no-access-log

The pool is sized like the pool Townsquare reads public articles through (FLOOR_POOL_SIZE,
default 10 per worker, Townsquare's DATABASE_POOL_SIZE) and, since every read is a single
autocommit SELECT, hands connections back without asyncpg's reset round trip. JSON is
rendered by pydantic-core's `to_json` (a serializer, not a framework), like Townsquare.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import asyncpg
from pydantic_core import to_json

PREFIX = "/api/v1/public/orgs/"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

_ORG = """(
    SELECT o.id FROM organizations o
    JOIN organization_modules m ON m.organization_id = o.id AND m.module = 'cms'
    WHERE o.slug = $1
)"""

_SELECT = """
SELECT a.id, a.slug, a.title, a.excerpt, a.published_at, a.author_id,
       u.display_name AS author_name, c.slug AS category_slug, c.name AS category_name,
       t.slugs AS tag_slugs, t.names AS tag_names{extra}
FROM articles a
LEFT JOIN users u ON u.id = a.author_id
LEFT JOIN categories c ON c.id = a.category_id
LEFT JOIN LATERAL (
    SELECT array_agg(g.slug) AS slugs, array_agg(g.name) AS names
    FROM article_tags x JOIN tags g ON g.id = x.tag_id
    WHERE x.article_id = a.id
) t ON true
WHERE a.organization_id = {org} AND a.status = 'published'
"""

FIRST_PAGE = _SELECT.format(extra="", org=_ORG) + "ORDER BY a.published_at DESC, a.id DESC LIMIT $2"
NEXT_PAGE = (
    _SELECT.format(extra="", org=_ORG)
    + "AND (a.published_at, a.id) < ($3, $4) ORDER BY a.published_at DESC, a.id DESC LIMIT $2"
)
ARTICLE = _SELECT.format(extra=", a.body", org=_ORG) + "AND a.slug = $2 LIMIT 1"
ORG_IS_PUBLIC = """
SELECT 1 FROM organizations o
JOIN organization_modules m ON m.organization_id = o.id AND m.module = 'cms'
WHERE o.slug = $1
"""

_pool: asyncpg.Pool | None = None


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode_cursor(values: dict[str, Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class BadRequest(Exception):
    pass


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        published_at = datetime.fromisoformat(value["p"])
        article_id = uuid.UUID(value["i"])
    except (binascii.Error, ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise BadRequest() from exc
    if published_at.tzinfo is None:
        raise BadRequest()
    return published_at, article_id


def item(row: asyncpg.Record) -> dict[str, Any]:
    author_id = row["author_id"]
    author_name = row["author_name"]
    category_slug = row["category_slug"]
    slugs = row["tag_slugs"]
    return {
        "id": str(row["id"]),
        "slug": row["slug"],
        "title": row["title"],
        "excerpt": row["excerpt"],
        "published_at": row["published_at"],
        "author": {"id": str(author_id), "display_name": author_name}
        if author_id is not None and author_name is not None
        else None,
        "category": {"slug": category_slug, "name": row["category_name"]}
        if category_slug is not None
        else None,
        "tags": [
            {"slug": s, "name": n} for s, n in sorted(zip(slugs, row["tag_names"], strict=True))
        ]
        if slugs
        else [],
    }


def dumps(value: Any) -> bytes:
    return to_json(value)


async def list_articles(pool: asyncpg.Pool, org: str, query: bytes) -> tuple[int, Any]:
    params = parse_qs(query.decode("latin-1"))
    try:
        limit = int(params["limit"][-1]) if "limit" in params else DEFAULT_LIMIT
    except ValueError:
        return 422, _problem(422, "validation_error", "limit is not an integer")
    if not 1 <= limit <= MAX_LIMIT:
        return 422, _problem(422, "validation_error", "limit is out of range")
    cursor = params.get("cursor", [None])[-1]
    after = None
    if cursor:
        try:
            after = decode_cursor(cursor)
        except BadRequest:
            return 400, _problem(400, "invalid_cursor", "Invalid cursor")
    async with pool.acquire() as conn:
        if after is not None:
            rows = await conn.fetch(NEXT_PAGE, org, limit + 1, *after)
        else:
            rows = await conn.fetch(FIRST_PAGE, org, limit + 1)
        if not rows and await conn.fetchval(ORG_IS_PUBLIC, org) is None:
            return 404, _problem(404, "not_found", "Not found")
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor({"p": iso(last["published_at"]), "i": str(last["id"])})
    return 200, {"items": [item(r) for r in rows], "next_cursor": next_cursor}


async def get_article(pool: asyncpg.Pool, org: str, slug: str) -> tuple[int, Any]:
    row = await pool.fetchrow(ARTICLE, org, slug)
    if row is None:
        return 404, _problem(404, "not_found", "Not found")
    article = item(row)
    article["body"] = row["body"]
    return 200, article


def _problem(status: int, code: str, title: str) -> dict[str, Any]:
    return {"title": title, "status": status, "code": code}


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


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    status, body = 404, _problem(404, "not_found", "Not found")
    path: str = scope["path"]
    if scope["method"] in ("GET", "HEAD") and path.startswith(PREFIX) and _pool is not None:
        parts = path[len(PREFIX) :].split("/")
        if len(parts) == 2 and parts[1] == "articles" and parts[0]:
            status, body = await list_articles(_pool, parts[0], scope["query_string"])
        elif len(parts) == 3 and parts[1] == "articles" and parts[0] and parts[2]:
            status, body = await get_article(_pool, parts[0], parts[2])
    content = dumps(body)
    media_type = b"application/json" if status == 200 else b"application/problem+json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media_type),
                (b"content-length", str(len(content)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
