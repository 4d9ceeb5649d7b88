"""The database layer: declarative Base, engines for SQLite and PostgreSQL, per-request sessions.

Services never commit; they `flush()`. A request's session is committed once by
`TransactionalRoute`, after the endpoint returned and before the response is sent, and
rolled back on any error. Work that must wait for the commit is registered with
`after_commit(session, callback)`.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import (
    DateTime,
    Enum,
    MetaData,
    PrimaryKeyConstraint,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    event,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from townsquare.config import Settings
from townsquare.db_outages import database_unavailable, is_database_outage
from townsquare.kit import clock
from townsquare.read_pool import ReadPool

logger = logging.getLogger("townsquare.db")
RowT = TypeVar("RowT")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both databases (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else clock.as_utc(value)


class Base(DeclarativeBase):
    """Declarative base of every table: constraint naming convention, UTC datetimes."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: Uuid()}


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=clock.now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        default=clock.now, onupdate=clock.now, nullable=False
    )


def enum_column(enum: type[StrEnum], name: str) -> Enum:
    """A `StrEnum` stored as a short string (a CHECK constraint, no native ENUM type), so
    adding a value never needs an `ALTER TYPE`."""
    return Enum(enum, name=name, native_enum=False, length=16, validate_strings=True)


class Model(IdMixin, TimestampMixin, Base):
    """Abstract base of a domain table: UUID id, created_at, updated_at."""

    __abstract__ = True


# --- engines ---------------------------------------------------------------------------


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """An async engine for the configured database, tuned for SQLite or PostgreSQL."""
    url = url or settings.DATABASE_URL
    if url.startswith("sqlite"):
        _ensure_sqlite_directory(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine, settings.SQLITE_BUSY_TIMEOUT_MS)
        return engine
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.DATABASE_POOL_SIZE,
        max_overflow=settings.DATABASE_MAX_OVERFLOW,
        pool_recycle=1800,
    )


def _ensure_sqlite_directory(url: str) -> None:
    from pathlib import Path

    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT and cannot BEGIN IMMEDIATE;
    # switch it off and emit BEGIN ourselves.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_unique_violation(exc: IntegrityError) -> bool:
    """True when the integrity error is a unique-constraint violation on either database."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate is not None:
        return str(sqlstate) == "23505"
    return "UNIQUE constraint failed" in str(orig)


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the unique constraint (or unique index) that `exc` violated, if known.

    PostgreSQL names it; SQLite names only the columns ("UNIQUE constraint failed:
    articles.organization_id, articles.slug"), which are looked up in the metadata.
    """
    orig = exc.orig
    name = getattr(getattr(orig, "__cause__", None), "constraint_name", None)
    if name is None:
        name = getattr(orig, "constraint_name", None)
    if name is not None:
        return str(name)
    message = str(orig)
    marker = "UNIQUE constraint failed: "
    if marker not in message:
        return None
    columns = tuple(part.strip() for part in message.split(marker, 1)[1].split(","))
    table = columns[0].split(".", 1)[0]
    return _unique_constraints_by_columns().get(
        (table, tuple(column.split(".", 1)[-1] for column in columns))
    )


@cache
def _unique_constraints_by_columns() -> dict[tuple[str, tuple[str, ...]], str]:
    found: dict[tuple[str, tuple[str, ...]], str] = {}
    for table in Base.metadata.tables.values():
        uniques: list[tuple[Any, tuple[str, ...]]] = [
            (constraint.name, tuple(c.name for c in constraint.columns))
            for constraint in table.constraints
            if isinstance(constraint, UniqueConstraint | PrimaryKeyConstraint)
        ]
        uniques += [
            (index.name, tuple(c.name for c in index.columns))
            for index in table.indexes
            if index.unique
        ]
        for name, columns in uniques:
            if isinstance(name, str):
                found.setdefault((table.name, columns), name)
    return found


def contains_pattern(text: str) -> str:
    """A LIKE pattern (escape character `\\`) matching values that contain `text`, in
    lowercase: compare it with `func.lower(column)`."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


ErrorFactory = Callable[[], Exception | Awaitable[Exception]]
"""Makes the domain error for a violated constraint (may query, e.g. for a free slug)."""


async def flush_or_conflict(
    session: AsyncSession,
    conflicts: Mapping[str, ErrorFactory],
    *,
    add: Iterable[object] = (),
    apply: Callable[[], None] | None = None,
) -> None:
    """Add `add`, run `apply` and flush, all inside a savepoint; a unique violation of a
    constraint named in `conflicts` rolls the savepoint back and raises that domain error.

    Changes go inside the savepoint because `begin_nested()` flushes what is pending before
    it starts. Any other integrity error is raised as it is (a bug, not a conflict). After
    a conflict the rows changed by `apply` are expired; the request fails with them.
    """
    try:
        async with session.begin_nested():
            session.add_all(list(add))
            if apply is not None:
                apply()
            await session.flush()
    except IntegrityError as exc:
        name = violated_constraint(exc) if is_unique_violation(exc) else None
        factory = conflicts.get(name) if name is not None else None
        if factory is None:
            raise
        error = factory()
        if inspect.isawaitable(error):
            error = await error
        raise error from exc


# --- sessions --------------------------------------------------------------------------


class SessionSource(Protocol):
    """What hands out sessions: the real `Database`, or a test's rolled-back connection."""

    def session(self, *, write: bool = True) -> AsyncSession: ...


class Database:
    """The engine and its session factories. Write sessions take SQLite's lock up front.

    On PostgreSQL it also owns the `read_pool` (`read_pool.py`) for hot single-statement
    reads, opened on first use; `dispose()` closes it with the engine."""

    def __init__(self, settings: Settings, url: str | None = None) -> None:
        self.settings = settings
        self.engine = create_engine(settings, url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write = async_sessionmaker(
            self.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False
        )
        self._read = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_pool: ReadPool | None = (
            None if self.is_sqlite else ReadPool(self.engine, size=settings.DATABASE_POOL_SIZE)
        )

    def session(self, *, write: bool = True) -> AsyncSession:
        return (self._write if write else self._read)()

    async def dispose(self) -> None:
        if self.read_pool is not None:
            await self.read_pool.close()
        await self.engine.dispose()


AfterCommit = Callable[[], Awaitable[None] | None]


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the session's transaction has committed; dropped on rollback."""
    session.info.setdefault("after_commit", []).append(callback)


async def commit(session: AsyncSession) -> None:
    """Commit and then run the after-commit callbacks (a failing callback is only logged)."""
    await session.commit()
    callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
    for callback in callbacks:
        try:
            result = callback()
            if result is not None:
                await result
        except Exception:
            logger.exception("after-commit callback failed")


@asynccontextmanager
async def transaction(source: SessionSource, *, write: bool = True) -> AsyncIterator[AsyncSession]:
    """A session committed when the block ends normally, rolled back when it raises."""
    session = source.session(write=write)
    try:
        yield session
        await commit(session)
    except BaseException:
        await session.rollback()
        session.info.pop("after_commit", None)
        raise
    finally:
        await session.close()


_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_STATE_KEY = "db_session"


async def get_session(request: Request) -> AsyncSession:
    """The request's session, opened on first use and committed by `TransactionalRoute`.

    Dependencies that do no I/O are still `async def`: FastAPI runs a plain `def` in a
    thread of its pool, a hand-off that costs more than the work."""
    if _STATE_KEY not in request.scope.setdefault("townsquare", {}):
        raise RuntimeError("get_session used on a route that is not a TransactionalRoute")
    session: AsyncSession | None = request.scope["townsquare"][_STATE_KEY]
    if session is None:
        source: SessionSource = request.app.state.database
        session = source.session(write=request.method in _UNSAFE_METHODS)
        request.scope["townsquare"][_STATE_KEY] = session
    return session


DbSession = Annotated[AsyncSession, Depends(get_session)]


async def _rollback_quietly(session: AsyncSession, exc: BaseException) -> None:
    try:
        await session.rollback()
    except Exception:
        # With the database gone the rollback fails too; the first error is the answer.
        if not (isinstance(exc, Exception) and is_database_outage(exc)):
            raise


class TransactionalRoute(APIRoute):
    """A route whose request session commits once before the response is sent."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def transactional_handler(request: Request) -> Response:
            request.scope.setdefault("townsquare", {})[_STATE_KEY] = None
            try:
                response = await handler(request)
                session: AsyncSession | None = request.scope["townsquare"][_STATE_KEY]
                if session is not None and response.status_code < 400:
                    await commit(session)
                elif session is not None:
                    await session.rollback()
                return response
            except BaseException as exc:
                session = request.scope["townsquare"][_STATE_KEY]
                if session is not None:
                    session.info.pop("after_commit", None)
                    await _rollback_quietly(session, exc)
                if isinstance(exc, Exception) and is_database_outage(exc):
                    logger.error("database unavailable: %s", type(exc).__name__)
                    raise database_unavailable() from exc
                raise
            finally:
                session = request.scope["townsquare"][_STATE_KEY]
                if session is not None:
                    await session.close()
                request.scope["townsquare"][_STATE_KEY] = None

        return transactional_handler
