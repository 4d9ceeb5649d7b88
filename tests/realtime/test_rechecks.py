"""Live sockets' access re-checks answered in batches: many sockets due together share one
transaction, and each still learns its own session's fate and inboxes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from tests.realtime.conftest import organization, person
from townsquare.auth import sessions as auth_sessions
from townsquare.config import Settings
from townsquare.db import Database, transaction
from townsquare.orgs.enums import MemberRole, Module
from townsquare.realtime import rechecks as rechecks_module
from townsquare.realtime.rechecks import AccessRechecks

pytestmark = pytest.mark.committed


class StatementLog:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def count(self, word: str) -> int:
        return sum(1 for statement in self.statements if word in statement)


@pytest.fixture
def statements(committed_db: Database) -> Iterator[StatementLog]:
    log = StatementLog()
    engine = committed_db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", log)
    yield log
    event.remove(engine, "before_cursor_execute", log)


async def test_sockets_due_together_share_one_lookup(
    committed_db: Database, settings: Settings, statements: StatementLog
) -> None:
    agents = [await person(committed_db, settings, display_name=f"Agent {n}") for n in range(3)]
    customers = [await person(committed_db, settings, display_name=f"Cust {n}") for n in range(5)]
    ended = await person(committed_db, settings)
    org = await organization(committed_db, {MemberRole.agent: agents})
    quiet = await organization(committed_db, {MemberRole.agent: agents[:1]}, modules=(Module.cms,))
    async with transaction(committed_db) as session:
        await auth_sessions.end_session_by_token(session, ended.token)
    rechecks = AccessRechecks(committed_db, settings, window_seconds=0.05)
    statements.statements.clear()
    try:
        people = [*agents, *customers, ended]
        # Two sockets of the first agent (two tabs) and one of everybody else.
        found = await asyncio.gather(
            rechecks.check(agents[0].token), *(rechecks.check(p.token) for p in people)
        )
    finally:
        await rechecks.close()

    assert statements.count("FROM user_sessions") == 1
    assert statements.count("FROM memberships") == 1
    first_tab, *answers = found
    assert first_tab == answers[0]
    by_person = dict(zip([p.user.display_name for p in people], answers, strict=True))
    assert by_person.pop("Pat") is None
    for name, access in by_person.items():
        assert access is not None
        assert access.display_name == name
        # The org without the support module is nobody's inbox.
        assert quiet.id not in access.agent_of
        assert access.agent_of == (frozenset({org.id}) if name.startswith("Agent") else frozenset())


async def test_an_unknown_token_is_no_session(committed_db: Database, settings: Settings) -> None:
    rechecks = AccessRechecks(committed_db, settings, window_seconds=0.01)
    try:
        assert await rechecks.check("no-such-token") is None
        assert await rechecks.check("") is None
    finally:
        await rechecks.close()


async def test_a_backlog_bigger_than_one_query_is_answered_in_chunks(
    committed_db: Database,
    settings: Settings,
    statements: StatementLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rechecks_module, "BATCH_LIMIT", 2)
    people = [await person(committed_db, settings, display_name=f"Cust {n}") for n in range(5)]
    rechecks = AccessRechecks(committed_db, settings, window_seconds=0.05)
    statements.statements.clear()
    try:
        found = await asyncio.gather(*(rechecks.check(p.token) for p in people))
    finally:
        await rechecks.close()

    assert statements.count("FROM user_sessions") == 3
    assert [access.display_name if access else None for access in found] == [
        p.user.display_name for p in people
    ]
