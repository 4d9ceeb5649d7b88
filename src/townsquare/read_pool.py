"""The read pool: hot single-statement reads straight on asyncpg, beside SQLAlchemy's pool.

The public site's reads are single autocommit SELECTs. Borrowing a connection from
SQLAlchemy's pool (with its pre-ping) and going through a session costs more than the
query itself, so these reads compile their statement once and hand its SQL to asyncpg, on
connections of a pool of their own. `Database` owns the pool on PostgreSQL: opened on
first use, closed by `Database.dispose()`.
"""

from __future__ import annotations

import asyncio
from collections import deque
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


class ReadPool:
    """Up to `size` asyncpg connections for single autocommit SELECTs, and the compiled
    form of their statements.

    A pool of its own rather than asyncpg's: each read borrows a connection for one
    statement, and asyncpg's pool spends more per borrow than this needs (a task to shield
    each release, a proxy object, reset and idle-timer bookkeeping). Connections open on
    demand and stay open until `close()`; nothing is reset between borrowers, since a read
    leaves no session state; one that broke or was interrupted mid-read is terminated, not
    reused. `async with pool.reads() as reads:` borrows one on the first read."""

    def __init__(self, engine: AsyncEngine, *, size: int) -> None:
        self.compiled = CompiledReads(engine.dialect)
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        # Open connections (idle or borrowed); `expire()` and `close()` forget them all, so
        # a borrowed one is terminated when it comes back.
        self._connections: set[Any] = set()
        self._idle: list[Any] = []
        self._opening = 0
        # Borrowers waiting for a connection; handed one, or None to open one themselves.
        self._waiters: deque[asyncio.Future[Any]] = deque()

    @property
    def is_open(self) -> bool:
        return bool(self._connections)

    def reads(self) -> DriverReads:
        return DriverReads(self.compiled, pool=self)

    async def acquire(self) -> Any:
        """A connection: an idle one, a new one while under `size`, else the next given back."""
        while True:
            while self._idle:
                connection = self._idle.pop()
                if not connection.is_closed():
                    return connection
                self._connections.discard(connection)
            if len(self._connections) + self._opening < self._size:
                return await self._connect()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._hand_over(waiter.result())
                raise
            if handed is not None:
                return handed

    async def _connect(self) -> Any:
        self._opening += 1
        try:
            connection = await asyncpg.connect(
                self._dsn, server_settings={"application_name": READ_POOL_APPLICATION_NAME}
            )
        except BaseException:
            self._hand_over(None)
            raise
        finally:
            self._opening -= 1
        self._connections.add(connection)
        return connection

    def release(self, connection: Any, *, broken: bool = False) -> None:
        """Take a borrowed connection back; a broken or forgotten one is terminated."""
        if broken or connection not in self._connections or connection.is_closed():
            self._connections.discard(connection)
            if not connection.is_closed():
                connection.terminate()
            self._hand_over(None)
            return
        self._hand_over(connection)

    def _hand_over(self, connection: Any | None) -> None:
        """Give `connection` (or, with None, a free slot) to the first waiting borrower."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is not None:
            self._idle.append(connection)

    def expire(self) -> None:
        """Forget every connection (the database restarted): idle ones are terminated,
        borrowed ones when they come back, and new ones are opened on demand."""
        idle, self._idle = self._idle, []
        self._connections.clear()
        for connection in idle:
            if not connection.is_closed():
                connection.terminate()
        for _ in range(len(self._waiters)):
            self._hand_over(None)

    async def close(self) -> None:
        """Close the idle connections; borrowed ones are terminated when they come back."""
        idle, self._idle = self._idle, []
        self._connections.clear()
        for _ in range(len(self._waiters)):
            self._hand_over(None)
        await asyncio.gather(
            *(connection.close(timeout=5) for connection in idle), return_exceptions=True
        )


class DriverReads:
    """Runs `ReadStatement`s as their compiled SQL on one asyncpg connection: borrowed from
    a `ReadPool` on the first read, or the `connection` given (a test's connection inside
    its transaction).

    Used as `async with`: the borrowed connection goes back at the end, and a connection
    error raised inside answers 503 as `DatabaseUnavailable`."""

    def __init__(
        self,
        compiled: CompiledReads,
        *,
        pool: ReadPool | None = None,
        connection: Any = None,
    ) -> None:
        self._compiled = compiled
        self._pool = pool
        # asyncpg is untyped: its connections are `Any` to mypy anyway.
        self._connection: Any = connection

    async def fetch(self, read: ReadStatement, params: Mapping[str, Any]) -> Sequence[Any]:
        compiled = self._compiled.get(read)
        args = compiled.args(params)
        pool = self._pool
        if pool is None:
            rows: Sequence[Any] = await self._connection.fetch(compiled.sql, *args)
            return rows
        for attempt in range(2):
            if self._connection is None:
                self._connection = await pool.acquire()
            try:
                rows = await self._connection.fetch(compiled.sql, *args)
                return rows
            except CONNECTION_ERRORS:
                # The database restarted or dropped us: every connection is suspect.
                self._give_back(broken=True)
                if attempt:
                    raise
                pool.expire()
            except asyncpg.PostgresError:
                raise
            except BaseException:
                # Cancelled or interrupted mid-read: the connection's state is unknown.
                self._give_back(broken=True)
                raise
        raise AssertionError("unreachable")

    async def __aenter__(self) -> DriverReads:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._give_back()
        if isinstance(exc, CONNECTION_ERRORS):
            raise DatabaseUnavailable() from exc

    def _give_back(self, *, broken: bool = False) -> None:
        if self._pool is not None and self._connection is not None:
            connection, self._connection = self._connection, None
            self._pool.release(connection, broken=broken)
