"""The public read model: published articles straight from SQLAlchemy Core rows to JSON.

This is the hot path of the API, so it loads no ORM objects: one prebuilt statement per
request (the org and its `cms` module are checked inside it, the tags come aggregated
as JSON), only the columns the response shows, keyset paging on `(published_at, id)`,
and the response body serialized once by pydantic-core. On PostgreSQL the statements,
compiled once, run straight on asyncpg connections of a read pool of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
from pydantic_core import to_json
from sqlalchemy import JSON, Select, Table, and_, bindparam, func, select, tuple_
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from starlette.datastructures import State
from starlette.requests import Request

from townsquare.auth.models import User
from townsquare.cms.enums import ArticleStatus
from townsquare.cms.models import Article, ArticleTag, Category, Tag
from townsquare.db import Database, SessionSource
from townsquare.errors import ServiceUnavailable
from townsquare.kit.pagination import decode_cursor, encode_cursor
from townsquare.orgs.enums import Module
from townsquare.orgs.models import Organization, OrganizationModule

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
FEED_ENTRIES = 50

articles = cast(Table, Article.__table__)
article_tags = cast(Table, ArticleTag.__table__)
categories = cast(Table, Category.__table__)
tags = cast(Table, Tag.__table__)
users = cast(Table, User.__table__)
organizations = cast(Table, Organization.__table__)
organization_modules = cast(Table, OrganizationModule.__table__)

# The org named in the path, if it exists and has the cms module on.
_public_org_id = (
    select(organizations.c.id)
    .join(
        organization_modules,
        and_(
            organization_modules.c.organization_id == organizations.c.id,
            organization_modules.c.module == Module.cms,
        ),
    )
    .where(organizations.c.slug == bindparam("org"))
    .scalar_subquery()
)


def _tags_json(dialect: str) -> ColumnElement[Any]:
    """The article's tags as a JSON array of `{"slug", "name"}` objects (NULL when none
    on PostgreSQL), rendered by the database so that Python only parses it."""
    if dialect == "postgresql":
        tag = func.json_build_object("slug", tags.c.slug, "name", tags.c.name)
        agg = func.json_agg(tag, type_=JSON)
    else:
        tag = func.json_object("slug", tags.c.slug, "name", tags.c.name)
        agg = func.json_group_array(tag, type_=JSON)
    return (
        select(agg)
        .select_from(article_tags.join(tags, tags.c.id == article_tags.c.tag_id))
        .where(article_tags.c.article_id == articles.c.id)
        .scalar_subquery()
    )


def _item_columns(dialect: str) -> list[ColumnElement[Any]]:
    return [
        articles.c.id,
        articles.c.slug,
        articles.c.title,
        articles.c.excerpt,
        articles.c.published_at,
        articles.c.author_id,
        users.c.display_name.label("author_name"),
        categories.c.slug.label("category_slug"),
        categories.c.name.label("category_name"),
        _tags_json(dialect).label("tags"),
    ]


def _with_joins(stmt: Select[Any]) -> Select[Any]:
    return stmt.select_from(
        articles.outerjoin(users, users.c.id == articles.c.author_id).outerjoin(
            categories, categories.c.id == articles.c.category_id
        )
    )


def _is_published() -> ColumnElement[bool]:
    return and_(
        articles.c.organization_id == _public_org_id,
        articles.c.status == ArticleStatus.published,
    )


def _after(published_at: ColumnElement[Any], id_: ColumnElement[Any]) -> ColumnElement[bool]:
    """Keyset condition: rows older than the cursor's `(published_at, id)`."""
    return tuple_(published_at, id_) < tuple_(
        bindparam("after_published_at", type_=articles.c.published_at.type),
        bindparam("after_id", type_=articles.c.id.type),
    )


def _keys_first(
    columns: list[ColumnElement[Any]],
    keys: Select[Any],
    published_at: ColumnElement[Any],
    id_: ColumnElement[Any],
) -> tuple[Select[Any], Select[Any]]:
    """The first and the next-page statement of a listing whose `keys` (id, published_at)
    come from one index: the keys are limited inside, the rows joined to them by primary
    key outside. The keys are the org's already (its category or tag); the outer query
    checks the status again, and adds no org condition, which would tempt the planner
    away from the primary key."""
    pages = []
    for keyset in (keys, keys.where(_after(published_at, id_))):
        page = (
            keyset.order_by(published_at.desc(), id_.desc())
            .limit(bindparam("limit"))
            .subquery("page")
        )
        pages.append(
            select(*columns)
            .select_from(
                page.join(articles, articles.c.id == page.c.id)
                .outerjoin(users, users.c.id == articles.c.author_id)
                .outerjoin(categories, categories.c.id == articles.c.category_id)
            )
            .where(articles.c.status == ArticleStatus.published)
            .order_by(page.c.published_at.desc(), page.c.id.desc())
        )
    return pages[0], pages[1]


class _Statements:
    """The prebuilt statements of one dialect (building them per request costs time)."""

    def __init__(self, dialect: str) -> None:
        columns = _item_columns(dialect)
        newest_first = (articles.c.published_at.desc(), articles.c.id.desc())
        after = _after(articles.c.published_at, articles.c.id)
        base = _with_joins(select(*columns)).where(_is_published())
        self.article = (
            _with_joins(select(*columns, articles.c.body))
            .where(_is_published(), articles.c.slug == bindparam("slug"))
            .limit(1)
        )
        self.first_page = base.order_by(*newest_first).limit(bindparam("limit"))
        self.next_page = base.where(after).order_by(*newest_first).limit(bindparam("limit"))
        # A category or a tag: first the page's (published_at, id) keys from the index
        # that serves them, then the rows, so page 500 costs what page 1 costs.
        category_id = (
            select(categories.c.id)
            .where(
                categories.c.organization_id == _public_org_id,
                categories.c.slug == bindparam("category"),
            )
            .scalar_subquery()
        )
        category_keys = select(
            articles.c.id.label("id"), articles.c.published_at.label("published_at")
        ).where(
            articles.c.category_id == category_id,
            articles.c.status == ArticleStatus.published,
        )
        self.category_first, self.category_next = _keys_first(
            columns, category_keys, articles.c.published_at, articles.c.id
        )
        tag_id = (
            select(tags.c.id)
            .where(tags.c.organization_id == _public_org_id, tags.c.slug == bindparam("tag"))
            .scalar_subquery()
        )
        tag_keys = select(
            article_tags.c.article_id.label("id"), article_tags.c.published_at.label("published_at")
        ).where(article_tags.c.tag_id == tag_id, article_tags.c.published_at.is_not(None))
        self.tag_first, self.tag_next = _keys_first(
            columns, tag_keys, article_tags.c.published_at, article_tags.c.article_id
        )
        self.org = (
            select(organizations.c.id, organizations.c.name)
            .join(
                organization_modules,
                and_(
                    organization_modules.c.organization_id == organizations.c.id,
                    organization_modules.c.module == Module.cms,
                ),
            )
            .where(organizations.c.slug == bindparam("org"))
        )
        self.feed = (
            _with_joins(select(*columns, articles.c.body, articles.c.updated_at))
            .where(_is_published())
            .order_by(*newest_first)
            .limit(FEED_ENTRIES)
        )


_statements: dict[str, _Statements] = {}


def statements(dialect: str) -> _Statements:
    found = _statements.get(dialect)
    if found is None:
        found = _statements[dialect] = _Statements(dialect)
    return found


# --- connections ---------------------------------------------------------------------------


class _DriverStatement:
    """A statement compiled once for asyncpg: its SQL, and its parameters in order."""

    def __init__(self, stmt: Select[Any], dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.fixed: dict[str, Any] = {
            name: compiled.binds[name].value
            for name in self.names
            if not compiled.binds[name].required
        }

    def args(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] if name in params else self.fixed[name] for name in self.names]


_driver_statements: dict[int, _DriverStatement] = {}


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"


# What a dropped, restarted or saturated database looks like from asyncpg: the
# connection is gone, the server is shutting down or out of connection slots, or the
# protocol broke off mid-message.
_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.InternalClientError,
)


class Reader:
    """Runs the prebuilt statements of one request.

    On PostgreSQL it hands their SQL, compiled once, straight to asyncpg outside any
    transaction: one round trip per read, no result processing in SQLAlchemy. With a
    read pool, a connection that turns out dead (the database restarted) is replaced
    and the read tried once more. On SQLite it executes them through SQLAlchemy Core."""

    def __init__(
        self,
        dialect: Dialect,
        *,
        pool: asyncpg.Pool | None = None,
        driver: Any = None,
        connection: AsyncConnection | None = None,
    ) -> None:
        self.dialect = dialect
        self.pool = pool
        self.driver = driver
        self.connection = connection
        self.statements = statements(dialect.name)

    async def all(self, stmt: Select[Any], params: dict[str, Any]) -> Sequence[Any]:
        if self.connection is not None:
            result = await self.connection.execute(stmt, params)
            mapped: Sequence[Any] = result.mappings().all()
            return mapped
        compiled = _driver_statements.get(id(stmt))
        if compiled is None:
            compiled = _driver_statements[id(stmt)] = _DriverStatement(stmt, self.dialect)
        args = compiled.args(params)
        if self.pool is None:
            rows: Sequence[Any] = await self.driver.fetch(compiled.sql, *args)
            return rows
        for attempt in range(2):
            if self.driver is None:
                self.driver = await self.pool.acquire()
            try:
                rows = await self.driver.fetch(compiled.sql, *args)
                return rows
            except _CONNECTION_ERRORS:
                await self._release(broken=True)
                if attempt:
                    raise
                await self.pool.expire_connections()
        raise AssertionError("unreachable")

    async def first(self, stmt: Select[Any], params: dict[str, Any]) -> Any | None:
        rows = await self.all(stmt, params)
        return rows[0] if rows else None

    async def _release(self, *, broken: bool = False) -> None:
        if self.pool is not None and self.driver is not None:
            driver, self.driver = self.driver, None
            if broken:
                # asyncpg hands a connection back by itself when it notices the loss.
                with contextlib.suppress(asyncpg.InterfaceError):
                    driver.terminate()
            await self.pool.release(driver)


# --- the read pool -------------------------------------------------------------------------

READ_POOL_APPLICATION_NAME = "townsquare-public-reads"
_POOL = "cms_read_pool"
_POOL_LOCK = "cms_read_pool_lock"


async def _keep_connection(_connection: asyncpg.Connection) -> None:
    # Public reads are single autocommit SELECTs: nothing to reset between borrowers,
    # so a connection goes back to the pool without the reset round trip.
    return None


async def _read_pool(state: State, database: Database) -> asyncpg.Pool:
    """The app's asyncpg pool for public reads, opened on first use."""
    pool: asyncpg.Pool | None = getattr(state, _POOL, None)
    if pool is not None:
        return pool
    lock: asyncio.Lock | None = getattr(state, _POOL_LOCK, None)
    if lock is None:
        lock = asyncio.Lock()
        setattr(state, _POOL_LOCK, lock)
    async with lock:
        pool = getattr(state, _POOL, None)
        if pool is None:
            dsn = database.engine.url.set(drivername="postgresql")
            pool = await asyncpg.create_pool(
                dsn.render_as_string(hide_password=False),
                min_size=1,
                max_size=database.settings.DATABASE_POOL_SIZE,
                reset=_keep_connection,
                server_settings={"application_name": READ_POOL_APPLICATION_NAME},
            )
            setattr(state, _POOL, pool)
    return pool


async def close_read_pool(app: Any) -> None:
    """Close the app's public read pool (called when the app shuts down)."""
    pool: asyncpg.Pool | None = getattr(app.state, _POOL, None)
    if pool is not None:
        setattr(app.state, _POOL, None)
        await pool.close()


@asynccontextmanager
async def reader(request: Request) -> AsyncIterator[Reader]:
    """A `Reader` for the request's reads.

    With a PostgreSQL `Database` it reads through the app's own asyncpg pool: borrowing
    from SQLAlchemy's pool (with its pre-ping) costs more than the query itself. Tests'
    rolled-back databases and SQLite read through a read session."""
    source: SessionSource = request.app.state.database
    if isinstance(source, Database) and not source.is_sqlite:
        try:
            pool = await _read_pool(request.app.state, source)
            db = Reader(source.engine.dialect, pool=pool)
            try:
                yield db
            finally:
                await db._release()
        except _CONNECTION_ERRORS as exc:
            raise DatabaseUnavailable() from exc
        return
    session = source.session(write=False)
    try:
        connection = await session.connection()
        if connection.dialect.name == "postgresql":
            raw = await connection.get_raw_connection()
            yield Reader(connection.dialect, driver=raw.driver_connection)
        else:
            yield Reader(connection.dialect, connection=connection)
    finally:
        await session.close()


# --- rendering -----------------------------------------------------------------------------


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _slug(tag: dict[str, str]) -> str:
    return tag["slug"]


def _item(row: Any) -> dict[str, Any]:
    """The public JSON object of a row (an asyncpg Record or a SQLAlchemy Row mapping);
    times are left for `dumps` to render."""
    found = row["tags"]
    if isinstance(found, str):
        found = json.loads(found)
    if not found:
        found = []
    elif len(found) > 1:
        found.sort(key=_slug)
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
        "tags": found,
    }


def dumps(value: Any) -> bytes:
    """JSON bytes, with UUIDs and UTC times rendered as pydantic renders them elsewhere."""
    return to_json(value)


# --- queries -------------------------------------------------------------------------------


async def org_is_public(db: Reader, org: str) -> tuple[uuid.UUID, str] | None:
    """The org's id and name if it exists with the cms module on."""
    row = await db.first(db.statements.org, {"org": org})
    return (row["id"], row["name"]) if row is not None else None


async def get_article(db: Reader, org: str, slug: str) -> dict[str, Any] | None:
    """The published article as its public JSON object, or None."""
    row = await db.first(db.statements.article, {"org": org, "slug": slug})
    if row is None:
        return None
    item = _item(row)
    item["body"] = row["body"]
    return item


class BadCursor(ValueError):
    pass


def _cursor_values(cursor: str) -> tuple[datetime, uuid.UUID]:
    values = decode_cursor(cursor)
    published, article = values.get("p"), values.get("i")
    if not isinstance(published, str) or not isinstance(article, str):
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
    return published_at, article_id


async def list_articles(
    db: Reader,
    org: str,
    *,
    limit: int,
    cursor: str | None,
    category: str | None,
    tag: str | None,
) -> dict[str, Any] | None:
    """A page `{"items", "next_cursor"}` of published articles, newest first; None when
    the org is unknown or its cms module is off. Raises BadCursor for a foreign cursor."""
    st = db.statements
    params: dict[str, Any] = {"org": org, "limit": limit + 1}
    if cursor is not None:
        params["after_published_at"], params["after_id"] = _cursor_values(cursor)
    if tag is not None:
        stmt = st.tag_first if cursor is None else st.tag_next
        params["tag"] = tag
    elif category is not None:
        stmt = st.category_first if cursor is None else st.category_next
        params["category"] = category
    else:
        stmt = st.first_page if cursor is None else st.next_page
    rows = await db.all(stmt, params)
    if not rows and await org_is_public(db, org) is None:
        return None
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor({"p": iso(last["published_at"]), "i": str(last["id"])})
    return {"items": [_item(r) for r in rows], "next_cursor": next_cursor}


async def feed_entries(db: Reader, org: str) -> Sequence[Any]:
    """The newest published articles (with body and updated_at) for the Atom feed."""
    rows = await db.all(db.statements.feed, {"org": org})
    return rows
