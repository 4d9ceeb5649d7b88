"""The database's read pool: its lifecycle, its compiled-statement cache, connection trouble."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import bindparam, select, text

from tests.conftest import _client_for, make_settings, postgres_only
from tests.factories import create_article, create_organization
from townsquare.cms.enums import ArticleStatus
from townsquare.config import Settings
from townsquare.db import Database
from townsquare.main import create_app
from townsquare.orgs.models import Organization
from townsquare.read_pool import (
    READ_POOL_APPLICATION_NAME,
    CompiledReads,
    DatabaseUnavailable,
    ReadPool,
    ReadStatement,
)

UNREACHABLE = "postgresql+asyncpg://nobody@127.0.0.1:1/nothing"
_ONE = ReadStatement(
    "tests.one", select(Organization.id).where(Organization.slug == bindparam("org"))
)


async def _read_pool_backends(database: Database, *, settle_to: int | None = None) -> int:
    """The read pool's backends on this database; with `settle_to`, waits (up to 5 s) for
    that count, since a backend leaves pg_stat_activity a moment after its socket closed."""
    found = -1
    for _ in range(50):
        async with database.session() as session:
            found = int(
                await session.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = :name AND datname = current_database()"
                    ),
                    {"name": READ_POOL_APPLICATION_NAME},
                )
                or 0
            )
        if settle_to is None or found == settle_to:
            break
        await asyncio.sleep(0.1)
    return found


class TestLifecycle:
    def test_sqlite_has_no_read_pool(self) -> None:
        database = Database(make_settings(DATABASE_URL="sqlite+aiosqlite:///:memory:"))
        assert database.read_pool is None

    async def test_opened_on_first_read_not_before(self) -> None:
        database = Database(make_settings(DATABASE_URL=UNREACHABLE))
        try:
            assert database.read_pool is not None
            assert not database.read_pool.is_open
        finally:
            await database.dispose()

    @postgres_only
    async def test_dispose_closes_the_pool_and_its_connections(self, settings: Settings) -> None:
        database = Database(settings)
        other = Database(settings)
        try:
            pool = database.read_pool
            assert pool is not None
            async with pool.reads() as reads:
                assert await reads.fetch(_ONE, {"org": "nobody"}) == []
            assert pool.is_open
            assert await _read_pool_backends(other) >= 1
            await database.dispose()
            assert not pool.is_open
            assert await _read_pool_backends(other, settle_to=0) == 0
        finally:
            await database.dispose()
            await other.dispose()

    @postgres_only
    async def test_the_app_closes_the_pool_of_the_database_it_opened(
        self, settings: Settings
    ) -> None:
        app = create_app(settings)
        async for client in _client_for(app):
            response = await client.get("/api/v1/public/orgs/nobody/articles")
            assert response.status_code == 404
            pool = app.state.database.read_pool
            assert pool.is_open
        assert not pool.is_open

    @postgres_only
    async def test_reopens_after_close(self, settings: Settings) -> None:
        database = Database(settings)
        try:
            pool = database.read_pool
            assert pool is not None
            for _ in range(2):
                async with pool.reads() as reads:
                    assert await reads.fetch(_ONE, {"org": "nobody"}) == []
                await pool.close()
                assert not pool.is_open
        finally:
            await database.dispose()


class TestCompiledStatements:
    def _compiled(self) -> CompiledReads:
        database = Database(make_settings(DATABASE_URL=UNREACHABLE))
        assert database.read_pool is not None
        return database.read_pool.compiled

    def test_compiled_once_per_key(self) -> None:
        compiled = self._compiled()
        first = compiled.get(_ONE)
        assert compiled.get(ReadStatement("tests.one", _ONE.statement)) is first
        assert compiled.keys() == ["tests.one"]
        assert "$1" in first.sql
        assert first.args({"org": "acme"}) == ["acme"]

    def test_one_key_cannot_name_two_statements(self) -> None:
        compiled = self._compiled()
        compiled.get(_ONE)
        other = ReadStatement("tests.one", select(Organization.name))
        with pytest.raises(ValueError, match=r"tests\.one"):
            compiled.get(other)

    def test_fixed_parameters_come_from_the_statement(self) -> None:
        compiled = self._compiled()
        read = ReadStatement(
            "tests.fixed",
            select(Organization.id).where(Organization.slug == "acme").limit(bindparam("n")),
        )
        assert compiled.get(read).args({"n": 5}) == ["acme", 5]

    @postgres_only
    async def test_public_reads_are_cached_under_their_names(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with committed_db.session() as session:
            org = await create_organization(session)
            await create_article(session, org, slug="a", status=ArticleStatus.published)
            await session.commit()
        async for client in _client_for(create_app(settings, database=committed_db)):
            for _ in range(2):
                assert (await client.get(f"/api/v1/public/orgs/{org.slug}/articles/a")).json()
                assert (await client.get(f"/api/v1/public/orgs/{org.slug}/articles")).json()
        assert committed_db.read_pool is not None
        assert sorted(committed_db.read_pool.compiled.keys()) == [
            "cms.public.article",
            "cms.public.first_page",
        ]


class _Connection:
    """Stands in for an asyncpg connection that fails its first `fails` fetches. When the
    failure was a loss asyncpg `noticed`, it has closed the connection already, and then
    refuses `terminate()`."""

    def __init__(self, fails: int = 0, error: BaseException | None = None, *, noticed: bool = True):
        self.fails = fails
        self.error = error
        self.noticed = noticed
        self.closed = False
        self.terminated = 0
        self.fetched = 0
        self.block: asyncio.Event | None = None

    async def fetch(self, _sql: str, *_args: Any) -> Sequence[Any]:
        if self.block is not None:
            await self.block.wait()
        if self.fails:
            self.fails -= 1
            self.closed = self.noticed
            assert self.error is not None
            raise self.error
        self.fetched += 1
        return [{"id": 1}]

    def is_closed(self) -> bool:
        return self.closed

    def terminate(self) -> None:
        if self.closed:
            raise asyncpg.InterfaceError("connection is closed")
        self.closed = True
        self.terminated += 1

    async def close(self, timeout: float | None = None) -> None:
        self.closed = True


def _pool(
    monkeypatch: pytest.MonkeyPatch, connections: list[_Connection], size: int = 10
) -> tuple[ReadPool, list[_Connection]]:
    """A real `ReadPool` whose connections are `connections`, in the order it opens them."""
    opened: list[_Connection] = []

    async def connect(*_args: Any, **_kwargs: Any) -> _Connection:
        connection = connections[len(opened)]
        opened.append(connection)
        return connection

    monkeypatch.setattr(asyncpg, "connect", connect)
    engine = Database(make_settings(DATABASE_URL=UNREACHABLE)).engine
    return ReadPool(engine, size=size), opened


async def _read(pool: ReadPool) -> Sequence[Any]:
    async with pool.reads() as reads:
        return await reads.fetch(_ONE, {"org": "acme"})


class TestConnectionTrouble:
    async def test_a_lost_connection_is_replaced_once_and_not_terminated_twice(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        lost = _Connection(1, asyncpg.ConnectionDoesNotExistError("closed mid-operation"))
        fresh = _Connection()
        pool, opened = _pool(monkeypatch, [lost, fresh])
        assert await _read(pool) == [{"id": 1}]
        assert opened == [lost, fresh]
        assert lost.terminated == 0
        assert await _read(pool) == [{"id": 1}]
        assert (len(opened), fresh.fetched) == (2, 2)

    async def test_a_broken_connection_is_terminated_not_reused(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        error = asyncpg.AdminShutdownError("terminating connection due to administrator command")
        broken = _Connection(1, error, noticed=False)
        fresh = _Connection()
        pool, opened = _pool(monkeypatch, [broken, fresh])
        assert await _read(pool) == [{"id": 1}]
        assert await _read(pool) == [{"id": 1}]
        assert broken.terminated == 1
        assert opened == [broken, fresh]

    async def test_a_second_loss_answers_database_unavailable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        error = asyncpg.ConnectionDoesNotExistError("closed")
        pool, opened = _pool(monkeypatch, [_Connection(1, error), _Connection(1, error)])
        with pytest.raises(DatabaseUnavailable):
            await _read(pool)
        assert len(opened) == 2
        assert not pool.is_open

    async def test_out_of_connection_slots_is_503(self, monkeypatch: pytest.MonkeyPatch) -> None:
        async def too_many_clients(*_args: Any, **_kwargs: Any) -> None:
            raise asyncpg.TooManyConnectionsError("sorry, too many clients already")

        monkeypatch.setattr(asyncpg, "connect", too_many_clients)
        settings = make_settings(DATABASE_URL=UNREACHABLE)
        database = Database(settings)
        try:
            async for client in _client_for(create_app(settings, database=database)):
                response = await client.get("/api/v1/public/orgs/acme/articles/a")
                assert response.status_code == 503
                assert response.json()["code"] == "database_unavailable"
                assert "too many clients" not in response.text
        finally:
            await database.dispose()

    async def test_errors_of_the_read_itself_keep_the_connection(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        connection = _Connection(1, asyncpg.UndefinedColumnError("no such column"), noticed=False)
        pool, opened = _pool(monkeypatch, [connection])
        with pytest.raises(asyncpg.UndefinedColumnError):
            await _read(pool)
        assert await _read(pool) == [{"id": 1}]
        assert opened == [connection]
        assert connection.terminated == 0

    async def test_a_read_cancelled_midway_does_not_reuse_its_connection(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        interrupted, fresh = _Connection(), _Connection()
        interrupted.block = asyncio.Event()
        pool, opened = _pool(monkeypatch, [interrupted, fresh], size=1)
        task = asyncio.create_task(_read(pool))
        while not opened:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert interrupted.terminated == 1
        assert await _read(pool) == [{"id": 1}]
        assert opened == [interrupted, fresh]


class TestBorrowing:
    async def test_never_more_than_size_connections(self, monkeypatch: pytest.MonkeyPatch) -> None:
        first, second = _Connection(), _Connection()
        pool, opened = _pool(monkeypatch, [first, second], size=2)
        held = [await pool.acquire(), await pool.acquire()]
        third = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0)
        assert not third.done()
        pool.release(held[0])
        assert await third is first
        assert opened == [first, second]

    async def test_a_cancelled_waiter_loses_no_connection(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        only = _Connection()
        pool, opened = _pool(monkeypatch, [only], size=1)
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        pool.release(held)
        assert await pool.acquire() is only
        assert opened == [only]

    async def test_a_broken_connection_frees_its_slot_for_a_waiter(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        broken, fresh = _Connection(), _Connection()
        pool, _ = _pool(monkeypatch, [broken, fresh], size=1)
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0)
        pool.release(held, broken=True)
        assert await waiter is fresh
        assert broken.terminated == 1

    async def test_close_closes_idle_connections_and_borrowed_ones_on_return(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        idle, borrowed = _Connection(), _Connection()
        pool, _ = _pool(monkeypatch, [idle, borrowed], size=2)
        first, second = await pool.acquire(), await pool.acquire()
        pool.release(first)
        await pool.close()
        assert idle.closed
        assert not pool.is_open
        pool.release(second)
        assert borrowed.terminated == 1
