"""Migrations upgrade and downgrade on the test database's kind, and match the models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import _TMP, IS_POSTGRES, POSTGRES_URL, make_settings
from townsquare.cms.models import described_by_models, is_search_table
from townsquare.db import Base, Database
from townsquare.migrations import runner


@pytest.fixture
async def fresh_url() -> AsyncIterator[str]:
    """An empty database of the same kind as the test database."""
    if not IS_POSTGRES:
        path = _TMP / "migrations.db"
        path.unlink(missing_ok=True)
        yield f"sqlite+aiosqlite:///{path}"
        return
    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL)
    name = f"{url.database}_migrations"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            # The full-text search's table (SQLite), column and index (PostgreSQL).
            "include_name": described_by_models,
        },
    )
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    names = set(inspect(connection).get_table_names()) - {"alembic_version"}
    return {name for name in names if not is_search_table(name)}


async def _inspect(url: str, fn: Any) -> Any:
    database = Database(make_settings(DATABASE_URL=url))
    try:
        async with database.engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await database.dispose()


class TestMigrations:
    async def test_upgrade_matches_models(self, fresh_url: str) -> None:
        await asyncio.to_thread(runner.upgrade, fresh_url)
        assert await _inspect(fresh_url, _diff) == []
        assert await _inspect(fresh_url, _tables) == set(Base.metadata.tables)

    async def test_downgrade_to_base_and_up_again(self, fresh_url: str) -> None:
        await asyncio.to_thread(runner.upgrade, fresh_url)
        await asyncio.to_thread(runner.downgrade, fresh_url, "base")
        assert await _inspect(fresh_url, _tables) == set()
        await asyncio.to_thread(runner.upgrade, fresh_url)
        assert await _inspect(fresh_url, _diff) == []
