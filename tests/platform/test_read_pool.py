"""The database's read pool: its lifecycle, its compiled-statement cache, connection trouble."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

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
    DriverReads,
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
    """Stands in for an asyncpg pool connection that fails its first `fails` fetches. When
    asyncpg `noticed` the loss it already handed the connection back, and like asyncpg it
    then refuses `terminate()`."""

    def __init__(self, fails: int, error: Exception, *, noticed: bool = True) -> None:
        self.fails = fails
        self.error = error
        self.noticed = noticed
        self.handed_back = False
        self.terminated = 0

    async def fetch(self, _sql: str, *_args: Any) -> Sequence[Any]:
        if self.fails:
            self.fails -= 1
            self.handed_back = self.noticed
            raise self.error
        return [{"id": 1}]

    def terminate(self) -> None:
        if self.handed_back:
            raise asyncpg.InterfaceError("connection has been released back to the pool")
        self.terminated += 1


class _Pool:
    def __init__(self, connections: list[_Connection]) -> None:
        self.connections = connections
        self.acquired: list[_Connection] = []
        self.released: list[_Connection] = []
        self.expired = 0

    async def acquire(self) -> _Connection:
        connection = self.connections[len(self.acquired)]
        self.acquired.append(connection)
        return connection

    async def release(self, connection: _Connection) -> None:
        self.released.append(connection)

    async def expire_connections(self) -> None:
        self.expired += 1


class _ReadPool:
    def __init__(self, pool: _Pool) -> None:
        self._pool = pool

    async def pool(self) -> _Pool:
        return self._pool


def _reads(pool: _Pool) -> DriverReads:
    compiled = CompiledReads(Database(make_settings(DATABASE_URL=UNREACHABLE)).engine.dialect)
    return DriverReads(compiled, pool=cast(ReadPool, _ReadPool(pool)))


class TestConnectionTrouble:
    async def test_a_lost_connection_is_replaced_once_and_not_terminated_twice(self) -> None:
        lost = _Connection(1, asyncpg.ConnectionDoesNotExistError("closed mid-operation"))
        fresh = _Connection(0, OSError())
        pool = _Pool([lost, fresh])
        async with _reads(pool) as reads:
            assert await reads.fetch(_ONE, {"org": "acme"}) == [{"id": 1}]
        assert pool.acquired == [lost, fresh]
        assert pool.released == [lost, fresh]
        assert pool.expired == 1
        assert (lost.terminated, fresh.terminated) == (0, 0)

    async def test_a_broken_connection_is_terminated_before_it_goes_back(self) -> None:
        error = asyncpg.AdminShutdownError("terminating connection due to administrator command")
        broken = _Connection(1, error, noticed=False)
        pool = _Pool([broken, _Connection(0, OSError())])
        async with _reads(pool) as reads:
            assert await reads.fetch(_ONE, {"org": "acme"}) == [{"id": 1}]
        assert broken.terminated == 1
        assert pool.released[0] is broken

    async def test_a_second_loss_answers_database_unavailable(self) -> None:
        error = asyncpg.ConnectionDoesNotExistError("closed")
        pool = _Pool([_Connection(1, error), _Connection(1, error)])
        with pytest.raises(DatabaseUnavailable):
            async with _reads(pool) as reads:
                await reads.fetch(_ONE, {"org": "acme"})
        assert len(pool.released) == 2

    async def test_out_of_connection_slots_is_503(self, monkeypatch: pytest.MonkeyPatch) -> None:
        async def too_many_clients(*_args: Any, **_kwargs: Any) -> None:
            raise asyncpg.TooManyConnectionsError("sorry, too many clients already")

        monkeypatch.setattr(asyncpg, "create_pool", too_many_clients)
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

    async def test_errors_of_the_read_itself_are_not_an_outage(self) -> None:
        pool = _Pool([_Connection(1, asyncpg.UndefinedColumnError("no such column"))])
        with pytest.raises(asyncpg.UndefinedColumnError):
            async with _reads(pool) as reads:
                await reads.fetch(_ONE, {"org": "acme"})
        assert len(pool.released) == 1
