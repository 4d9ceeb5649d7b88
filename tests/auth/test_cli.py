"""`townsquare admin promote|demote EMAIL`: the way to make the first staff user."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.auth.helpers import unique_email
from tests.conftest import TEST_DATABASE_URL
from tests.factories import create_user
from townsquare import config
from townsquare.auth.models import User
from townsquare.cli import app
from townsquare.db import Database, transaction


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, committed_db: Database) -> Iterator[Database]:
    monkeypatch.setenv("TOWNSQUARE_DATABASE_URL", TEST_DATABASE_URL)
    config.get_settings.cache_clear()
    yield committed_db
    config.get_settings.cache_clear()


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _make_user(email: str) -> None:
    database = Database(config.get_settings())
    try:
        async with transaction(database) as session:
            await create_user(session, email=email)
    finally:
        await database.dispose()


async def _is_staff(email: str) -> bool:
    database = Database(config.get_settings())
    try:
        async with database.session() as session:
            value = await session.scalar(select(User.is_staff).where(User.email == email))
            assert value is not None
            return value
    finally:
        await database.dispose()


class TestAdminCommands:
    def test_promote_then_demote(self, cli_env: Database) -> None:
        email = unique_email("cli")
        _run(_make_user(email))
        runner = CliRunner()
        promoted = runner.invoke(app, ["admin", "promote", email.upper()])
        assert promoted.exit_code == 0, promoted.output
        assert "is now staff" in promoted.output
        assert _run(_is_staff(email)) is True
        demoted = runner.invoke(app, ["admin", "demote", email])
        assert demoted.exit_code == 0, demoted.output
        assert _run(_is_staff(email)) is False

    def test_unknown_email_fails(self, cli_env: Database) -> None:
        result = CliRunner().invoke(app, ["admin", "promote", "nobody-here@example.org"])
        assert result.exit_code == 1
        assert "no account" in result.output
