"""The read pool: hot single-statement reads straight on asyncpg, beside SQLAlchemy's pool.

The public site's reads are single autocommit SELECTs. Borrowing a connection from
SQLAlchemy's pool (with its pre-ping) and going through a session costs more than the
query itself, so these reads compile their statement once and hand its SQL to asyncpg, on
connections of a pool of their own. `Database` owns the pool on PostgreSQL: opened on
first use, closed by `Database.dispose()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from townsquare.errors import ServiceUnavailable

READ_POOL_APPLICATION_NAME = "townsquare-public-reads"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"


# What a dropped, restarted or saturated database looks like from asyncpg: the
# connection is gone, the server is shutting down or out of connection slots, or the
# protocol broke off mid-message.
CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.InternalClientError,
)


@dataclass(frozen=True, eq=False)
class ReadStatement:
    """A statement for the read pool, under the `key` its compiled form is cached by.

    Build these once (module level or a per-dialect cache), each key naming one statement."""

    key: str
    statement: Select[Any]


class CompiledRead:
    """A statement compiled once for asyncpg: its SQL, and its parameters in order."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.statement = statement
        self.sql = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.fixed: dict[str, Any] = {
            name: compiled.binds[name].value
            for name in self.names
            if not compiled.binds[name].required
        }

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] if name in params else self.fixed[name] for name in self.names]


class CompiledReads:
    """The compiled form of each `ReadStatement` for one dialect, by key."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._by_key: dict[str, CompiledRead] = {}

    def get(self, read: ReadStatement) -> CompiledRead:
        found = self._by_key.get(read.key)
        if found is None:
            found = self._by_key[read.key] = CompiledRead(read.statement, self.dialect)
        elif found.statement is not read.statement:
            # Serving one statement's SQL for another would answer the wrong rows.
            raise ValueError(f"read key {read.key!r} names two different statements")
        return found

    def keys(self) -> list[str]:
        return list(self._by_key)


async def _keep_connection(_connection: asyncpg.Connection) -> None:
    # Every read is a single autocommit SELECT: nothing to reset between borrowers, so a
    # connection goes back to the pool without the reset round trip.
    return None


class ReadPool:
    """An asyncpg pool for single autocommit SELECTs, and their compiled statements.

    `async with pool.reads() as reads:` borrows a connection on the first read and gives it
    back at the end; a connection that turns out dead (the database restarted) is replaced
    and the read tried once more; a database that cannot be reached answers 503."""

    def __init__(self, engine: AsyncEngine, *, size: int) -> None:
        self.compiled = CompiledReads(engine.dialect)
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def pool(self) -> asyncpg.Pool:
        """The asyncpg pool, opened on first use (again after `close()`)."""
        pool = self._pool
        if pool is not None:
            return pool
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self._size,
                    reset=_keep_connection,
                    server_settings={"application_name": READ_POOL_APPLICATION_NAME},
                )
            return self._pool

    def reads(self) -> DriverReads:
        return DriverReads(self.compiled, pool=self)

    async def close(self) -> None:
        """Close the pool's connections (waits for borrowed ones to come back)."""
        async with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


class DriverReads:
    """Runs `ReadStatement`s as their compiled SQL on one asyncpg connection: borrowed from
    a `ReadPool`, or the `connection` given (a test's connection inside its transaction).

    Used as `async with`: the borrowed connection goes back at the end, and a connection
    error raised inside answers 503 as `DatabaseUnavailable`."""

    def __init__(
        self,
        compiled: CompiledReads,
        *,
        pool: ReadPool | None = None,
        connection: asyncpg.Connection | None = None,
    ) -> None:
        self._compiled = compiled
        self._pool = pool
        # asyncpg is untyped: its connection and pool are `Any` to mypy anyway.
        self._connection: Any = connection
        self._borrowed_from: Any = None

    async def fetch(self, read: ReadStatement, params: Mapping[str, Any]) -> Sequence[Any]:
        compiled = self._compiled.get(read)
        args = compiled.args(params)
        if self._pool is None:
            rows: Sequence[Any] = await self._connection.fetch(compiled.sql, *args)
            return rows
        for attempt in range(2):
            if self._borrowed_from is None:
                pool = await self._pool.pool()
                self._connection = await pool.acquire()
                self._borrowed_from = pool
            try:
                rows = await self._connection.fetch(compiled.sql, *args)
                return rows
            except CONNECTION_ERRORS:
                pool = self._borrowed_from
                await self._release(broken=True)
                if attempt:
                    raise
                await pool.expire_connections()
        raise AssertionError("unreachable")

    async def __aenter__(self) -> DriverReads:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self._release()
        except CONNECTION_ERRORS as error:
            raise DatabaseUnavailable() from error
        if isinstance(exc, CONNECTION_ERRORS):
            raise DatabaseUnavailable() from exc

    async def _release(self, *, broken: bool = False) -> None:
        pool, connection = self._borrowed_from, self._connection
        if pool is None:
            return
        self._borrowed_from = self._connection = None
        if broken:
            # asyncpg hands a connection back by itself when it notices the loss.
            with contextlib.suppress(asyncpg.InterfaceError):
                connection.terminate()
        await pool.release(connection)
