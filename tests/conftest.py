"""Test fixtures: a database per run (SQLite, or PostgreSQL when TOWNSQUARE_TEST_DATABASE_URL
is set), each test in a transaction rolled back at the end, an HTTP client over the app."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import ModuleType

os.environ["TOWNSQUARE_ENV"] = "test"
os.environ.setdefault("TOWNSQUARE_RUN_WORKER_IN_PROCESS", "false")

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from townsquare import config
from townsquare.config import Settings
from townsquare.db import Base, Database
from townsquare.kit import clock as app_clock
from townsquare.main import create_app
from townsquare.models import import_all_models

config.get_settings.cache_clear()
import_all_models()

_TMP = Path(tempfile.mkdtemp(prefix="townsquare-tests-"))
POSTGRES_URL = os.environ.get("TOWNSQUARE_TEST_DATABASE_URL") or None
TEST_DATABASE_URL = POSTGRES_URL or f"sqlite+aiosqlite:///{_TMP / 'test.db'}"
IS_POSTGRES = POSTGRES_URL is not None


def make_settings(**overrides: object) -> Settings:
    """Settings for a test app: test mode, the test database, no in-process worker."""
    values: dict[str, object] = {
        "ENV": "test",
        "DATABASE_URL": TEST_DATABASE_URL,
        "PUBLIC_URL": "http://testserver",
        "RUN_WORKER_IN_PROCESS": False,
        "EMAIL_BACKEND": "console",
        "EMAIL_FILE_DIR": _TMP / "mail",
        "MEDIA_DIR": _TMP / "media",
        "ARGON2_MEMORY_COST_KIB": 19 * 1024,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class RolledBackDatabase:
    """Hands out sessions on one connection whose outer transaction the test rolls back."""

    def __init__(self, connection: AsyncConnection, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings
        self.is_sqlite = connection.dialect.name == "sqlite"
        self.engine = connection.engine

    def session(self, *, write: bool = True) -> AsyncSession:
        return AsyncSession(
            bind=self.connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        )


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    database = Database(settings)
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    yield database.engine
    await database.dispose()


@pytest.fixture
async def db(engine: AsyncEngine, settings: Settings) -> AsyncIterator[RolledBackDatabase]:
    """The test's database: everything written through it is rolled back at the end."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield RolledBackDatabase(connection, settings)
        finally:
            if transaction.is_active:
                await transaction.rollback()


@pytest.fixture
async def session(db: RolledBackDatabase) -> AsyncIterator[AsyncSession]:
    """A session for arranging rows and reading results; flush() is enough to share them."""
    session = db.session()
    try:
        yield session
    finally:
        await session.close()


@pytest.fixture
async def committed_db(engine: AsyncEngine, settings: Settings) -> AsyncIterator[Database]:
    """A real database whose commits are real (for races); every table is emptied afterwards."""
    database = Database(settings)
    try:
        yield database
    finally:
        async with database.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                await conn.execute(delete(table))
        await database.dispose()


@pytest.fixture
def app(db: RolledBackDatabase, settings: Settings) -> FastAPI:
    return create_app(settings, database=db)


async def _client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client over the app in-process (no network)."""
    async for c in _client_for(app):
        yield c


@pytest.fixture
async def new_client(app: FastAPI) -> AsyncIterator[Callable[[], Awaitable[httpx.AsyncClient]]]:
    """Makes more clients over the same app (one per signed-in user in a test)."""
    async with AsyncExitStack() as stack:

        async def make() -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://testserver")
            )

        yield make


@pytest.fixture
async def committed_client(
    committed_db: Database, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client over an app whose requests really commit (concurrency tests)."""
    async for c in _client_for(create_app(settings, database=committed_db)):
        yield c


@pytest.fixture
def clock() -> Iterator[ModuleType]:
    """The app clock; move it with `clock.travel(timedelta)` or `clock.freeze(dt)`."""
    yield app_clock
    app_clock.reset()


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    app_clock.reset()


postgres_only = pytest.mark.skipif(
    not IS_POSTGRES, reason="needs PostgreSQL (row locks, SKIP LOCKED)"
)
