"""The public read model: published articles straight from SQLAlchemy Core rows to JSON.

This is the hot path of the API, so it loads no ORM objects: one prebuilt statement per
request (`cms.public_statements`: the org and its `cms` module are checked inside it, the
tags come aggregated as `[slug, name]` pairs), only the columns the response shows, keyset
paging, and the response body serialized once by pydantic-core. On PostgreSQL the
statements, compiled once, run straight on asyncpg connections of the database's read
pool (`townsquare.read_pool`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.requests import Request

from townsquare.cms.public_cache import etag_of, newest
from townsquare.cms.public_statements import FEED_ENTRIES, Statements, statements
from townsquare.db import Database, SessionSource
from townsquare.kit.pagination import decode_cursor, encode_cursor
from townsquare.read_pool import CompiledReads, DriverReads, ReadStatement

__all__ = ["FEED_ENTRIES", "Reader", "reader"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


# --- connections ---------------------------------------------------------------------------


class Reader:
    """Runs the prebuilt statements of one request, as `async with reader(request) as db`.

    With a PostgreSQL `Database` their SQL, compiled once, goes straight to asyncpg on the
    database's read pool (`townsquare.read_pool`), outside any transaction: one round trip
    per read, no result processing in SQLAlchemy. Tests' rolled-back databases and SQLite
    read through a read session."""

    def __init__(self, request: Request) -> None:
        self._source: SessionSource = request.app.state.database
        self._driver: DriverReads | None = None
        self._session: AsyncSession | None = None
        self._connection: AsyncConnection | None = None
        self.statements: Statements = statements("postgresql")

    async def __aenter__(self) -> Reader:
        source = self._source
        pool = source.read_pool if isinstance(source, Database) else None
        if pool is not None:
            self._driver = await pool.reads().__aenter__()
            return self
        self._session = session = source.session(write=False)
        try:
            connection = await session.connection()
            if connection.dialect.name == "postgresql":
                # The test's connection, inside its transaction: the production SQL and
                # rows, compiled per request (this path serves no traffic).
                raw = await connection.get_raw_connection()
                self._driver = DriverReads(
                    CompiledReads(connection.dialect), connection=raw.driver_connection
                )
            else:
                self._connection = connection
                self.statements = statements(connection.dialect.name)
        except BaseException:
            await session.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
        elif self._driver is not None:
            await self._driver.__aexit__(exc_type, exc, traceback)

    async def all(self, read: ReadStatement, params: dict[str, Any]) -> Sequence[Any]:
        if self._driver is not None:
            return await self._driver.fetch(read, params)
        assert self._connection is not None
        result = await self._connection.execute(read.statement, params)
        mapped: Sequence[Any] = result.mappings().all()
        return mapped

    async def first(self, read: ReadStatement, params: dict[str, Any]) -> Any | None:
        rows = await self.all(read, params)
        return rows[0] if rows else None


def reader(request: Request) -> Reader:
    """The `Reader` of a request's public reads (use it as `async with`)."""
    return Reader(request)


# --- rendering -----------------------------------------------------------------------------


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _item(row: Any) -> dict[str, Any]:
    """The public JSON object of a row (an asyncpg Record or a SQLAlchemy Row mapping);
    times are left for `dumps` to render."""
    found = row["tags"]
    author_id = row["author_id"]
    category_slug = row["category_slug"]
    return {
        "id": str(row["id"]),
        "slug": row["slug"],
        "title": row["title"],
        "excerpt": row["excerpt"],
        "published_at": row["published_at"],
        "author": {"id": str(author_id), "display_name": row["author_name"]}
        if author_id is not None and row["author_name"] is not None
        else None,
        "category": {"slug": category_slug, "name": row["category_name"]}
        if category_slug is not None
        else None,
        "tags": [{"slug": slug, "name": name} for slug, name in sorted(found)] if found else [],
    }


def dumps(value: Any) -> bytes:
    """JSON bytes, with UUIDs and UTC times rendered as pydantic renders them elsewhere."""
    return to_json(value)


# --- queries -------------------------------------------------------------------------------


class Validators:
    """What a public answer is validated by: its weak ETag and its Last-Modified time."""

    __slots__ = ("etag", "last_modified")

    def __init__(self, etag: str, last_modified: datetime | None) -> None:
        self.etag = etag
        self.last_modified = last_modified


def _article_validators(row: Any) -> Validators:
    """From the article's id and `updated_at` (which every change of its own row moves:
    edits, tag changes, publishing) and the values shown beside them (its author's name,
    its category, its tags' names). Cheap on purpose: every read computes them."""
    updated_at = row["updated_at"]
    shown = f"{row['author_name']}|{row['category_slug']}|{row['category_name']}|{row['tags']}"
    return Validators(
        etag_of(shown.encode(), f"{row['id'].hex}-{int(updated_at.timestamp() * 1e6):x}-"),
        newest(updated_at, row["author_updated_at"], row["category_updated_at"]),
    )


async def org_is_public(db: Reader, org: str) -> tuple[uuid.UUID, str] | None:
    """The org's id and name if it exists with the cms module on."""
    row = await db.first(db.statements.org, {"org": org})
    return (row["id"], row["name"]) if row is not None else None


async def org_profile(db: Reader, org: str) -> tuple[dict[str, Any], datetime] | None:
    """The org's public profile and when it last changed, or None for no such org."""
    row = await db.first(db.statements.org_profile, {"org": org})
    if row is None:
        return None
    profile = {
        "name": row["name"],
        "slug": row["slug"],
        "avatar_url": row["avatar_url"],
        "timezone": row["timezone"],
        "modules": sorted(row["modules"] or ()),
    }
    return profile, row["updated_at"]


async def get_article(db: Reader, org: str, slug: str) -> tuple[dict[str, Any], Validators] | None:
    """The published article as its public JSON object, with its validators, or None."""
    row = await db.first(db.statements.article, {"org": org, "slug": slug})
    if row is None:
        return None
    item = _item(row)
    item["body"] = row["body"]
    return item, _article_validators(row)


async def article_validators(db: Reader, org: str, slug: str) -> Validators | None:
    """The published article's validators (without reading its body), or None."""
    row = await db.first(db.statements.article_validators, {"org": org, "slug": slug})
    return _article_validators(row) if row is not None else None


async def redirect_slug(db: Reader, org: str, slug: str) -> str | None:
    """The current slug of the published article that had `slug` before, if any."""
    row = await db.first(db.statements.old_slug, {"org": org, "slug": slug})
    return row["slug"] if row is not None else None


class BadCursor(ValueError):
    pass


def _cursor_values(cursor: str, *, ranked: bool) -> dict[str, Any]:
    """The keyset parameters of a cursor of this kind of list (a search's carries the
    rank too)."""
    values = decode_cursor(cursor)
    published, article, rank = values.get("p"), values.get("i"), values.get("r")
    if not isinstance(published, str) or not isinstance(article, str):
        raise BadCursor()
    if ranked != isinstance(rank, float) or isinstance(rank, bool):
        raise BadCursor()
    try:
        published_at = datetime.fromisoformat(published)
        article_id = uuid.UUID(article)
        if published_at.tzinfo is None:
            raise BadCursor()
        # Out-of-range offsets (year 1 at +14:00) overflow here, not in the database.
        published_at = published_at.astimezone(UTC)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadCursor() from exc
    params = {"after_published_at": published_at, "after_id": article_id}
    if ranked:
        params["after_rank"] = rank
    return params


_WORD = re.compile(r"\w+")


def _fts5_query(q: str) -> str | None:
    """An FTS5 query for every word of `q` in the article's text columns (the words
    quoted: nothing typed is FTS5 syntax), or None when `q` has no word."""
    words = _WORD.findall(q)
    if not words:
        return None
    return "{title excerpt body} : (" + " ".join(f'"{w}"' for w in words) + ")"


async def list_articles(
    db: Reader,
    org: str,
    *,
    limit: int,
    cursor: str | None,
    category: str | None,
    tag: str | None,
    q: str | None = None,
) -> tuple[dict[str, Any], datetime | None] | None:
    """A page `{"items", "next_cursor"}` of published articles, newest first (best match
    first with `q`), and the newest change among them; None when the org is unknown or its
    cms module is off. `category` includes its subcategories. Raises BadCursor for a
    foreign cursor."""
    st = db.statements
    params: dict[str, Any] = {"org": org, "limit": limit + 1}
    search = q is not None
    if cursor is not None:
        params.update(_cursor_values(cursor, ranked=search))
    if category is None and tag is None and not search:
        stmt = st.first_page if cursor is None else st.next_page
    else:
        stmt = st.listing(
            category=category is not None, tag=tag is not None, search=search, first=cursor is None
        )
        if category is not None:
            params["category"] = category
        if tag is not None:
            params["tag"] = tag
        if q is not None:
            params["q"] = q if st.dialect == "postgresql" else _fts5_query(q)
    if search and params["q"] is None:
        rows: Sequence[Any] = []
    else:
        rows = await db.all(stmt, params)
    if not rows and await org_is_public(db, org) is None:
        return None
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        values: dict[str, Any] = {"p": iso(last["published_at"]), "i": str(last["id"])}
        if search:
            values["r"] = float(last["rank"])
        next_cursor = encode_cursor(values)
    page = {"items": [_item(r) for r in rows], "next_cursor": next_cursor}
    return page, max((r["updated_at"] for r in rows), default=None)


async def feed_entries(
    db: Reader, org: str, *, category: str | None = None, tag: str | None = None
) -> Sequence[Any]:
    """The newest published articles (with body and updated_at) for the Atom feed."""
    params: dict[str, Any] = {"org": org}
    if category is not None:
        params["category"] = category
    if tag is not None:
        params["tag"] = tag
    read = db.statements.feed(category=category is not None, tag=tag is not None)
    rows = await db.all(read, params)
    return rows
