"""The public read model: published articles straight from SQLAlchemy Core rows to JSON.

This is the hot path of the API, so it loads no ORM objects: one prebuilt statement per
request (the org and its `cms` module are checked inside it, the tags come aggregated as
`[slug, name]` pairs), only the columns the response shows, keyset paging on
`(published_at, id)`, and the response body serialized once by pydantic-core. On
PostgreSQL the statements, compiled once, run straight on asyncpg connections of the
database's read pool (`townsquare.read_pool`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, cast

from pydantic_core import to_json
from sqlalchemy import JSON, Select, Table, Text, and_, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from starlette.requests import Request

from townsquare.auth.models import User
from townsquare.cms.enums import ArticleStatus
from townsquare.cms.models import Article, ArticleTag, Category, Tag
from townsquare.db import Database, SessionSource
from townsquare.kit.pagination import decode_cursor, encode_cursor
from townsquare.orgs.enums import Module
from townsquare.orgs.models import Organization, OrganizationModule
from townsquare.read_pool import CompiledReads, DriverReads, ReadStatement

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


def _tags(dialect: str) -> ColumnElement[Any]:
    """The article's tags as `[slug, name]` pairs: a two-dimensional text array on
    PostgreSQL (NULL when none), which asyncpg decodes into lists without a JSON parse in
    Python; a JSON array of arrays on SQLite."""
    agg: ColumnElement[Any]
    if dialect == "postgresql":
        agg = func.array_agg(array([tags.c.slug, tags.c.name]), type_=ARRAY(Text, dimensions=2))
    else:
        agg = func.json_group_array(func.json_array(tags.c.slug, tags.c.name), type_=JSON)
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
        _tags(dialect).label("tags"),
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
    """The prebuilt statements of one dialect (building them per request costs time), each
    under the key the read pool caches its compiled SQL by."""

    def __init__(self, dialect: str) -> None:
        columns = _item_columns(dialect)
        newest_first = (articles.c.published_at.desc(), articles.c.id.desc())
        after = _after(articles.c.published_at, articles.c.id)
        base = _with_joins(select(*columns)).where(_is_published())
        self.article = _read(
            "article",
            _with_joins(select(*columns, articles.c.body))
            .where(_is_published(), articles.c.slug == bindparam("slug"))
            .limit(1),
        )
        self.first_page = _read(
            "first_page", base.order_by(*newest_first).limit(bindparam("limit"))
        )
        self.next_page = _read(
            "next_page", base.where(after).order_by(*newest_first).limit(bindparam("limit"))
        )
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
        category_first, category_next = _keys_first(
            columns, category_keys, articles.c.published_at, articles.c.id
        )
        self.category_first = _read("category_first", category_first)
        self.category_next = _read("category_next", category_next)
        tag_id = (
            select(tags.c.id)
            .where(tags.c.organization_id == _public_org_id, tags.c.slug == bindparam("tag"))
            .scalar_subquery()
        )
        tag_keys = select(
            article_tags.c.article_id.label("id"), article_tags.c.published_at.label("published_at")
        ).where(article_tags.c.tag_id == tag_id, article_tags.c.published_at.is_not(None))
        tag_first, tag_next = _keys_first(
            columns, tag_keys, article_tags.c.published_at, article_tags.c.article_id
        )
        self.tag_first = _read("tag_first", tag_first)
        self.tag_next = _read("tag_next", tag_next)
        self.org = _read(
            "org",
            select(organizations.c.id, organizations.c.name)
            .join(
                organization_modules,
                and_(
                    organization_modules.c.organization_id == organizations.c.id,
                    organization_modules.c.module == Module.cms,
                ),
            )
            .where(organizations.c.slug == bindparam("org")),
        )
        self.feed = _read(
            "feed",
            _with_joins(select(*columns, articles.c.body, articles.c.updated_at))
            .where(_is_published())
            .order_by(*newest_first)
            .limit(FEED_ENTRIES),
        )


def _read(name: str, statement: Select[Any]) -> ReadStatement:
    return ReadStatement(f"cms.public.{name}", statement)


_statements: dict[str, _Statements] = {}


def statements(dialect: str) -> _Statements:
    found = _statements.get(dialect)
    if found is None:
        found = _statements[dialect] = _Statements(dialect)
    return found


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
        self.statements = statements("postgresql")

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
