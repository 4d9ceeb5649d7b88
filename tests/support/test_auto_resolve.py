"""The auto-resolve duty: off by default; resolves conversations that waited on their
customer for `SUPPORT_AUTO_RESOLVE_HOURS`, with a system message, an audit entry and
events, and nothing that a person touched since."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from tests.support.conftest import Desk, Listener
from townsquare.config import Settings
from townsquare.db import SessionSource
from townsquare.orgs.models import AuditLogEntry
from townsquare.realtime.events import org_agents_channel, user_channel
from townsquare.support.auto_resolve import resolution_notice
from townsquare.support.duties import resolve_waiting
from townsquare.worker.registry import DutyContext

HOURS = 48
ON = make_settings(SUPPORT_AUTO_RESOLVE_HOURS=HOURS)
WAIT = timedelta(hours=HOURS)


async def sweep(db: SessionSource, settings: Settings = ON) -> int:
    return await resolve_waiting(DutyContext(db=db, settings=settings, worker_id="tests"))


async def status_of(desk: Desk, conversation_id: str) -> str:
    return str((await desk.get("agent", conversation_id))["status"])


class TestAutoResolve:
    async def test_off_by_default(
        self, desk: Desk, db: SessionSource, settings: Settings, clock: ModuleType
    ) -> None:
        assert settings.SUPPORT_AUTO_RESOLVE_HOURS == 0
        c = await desk.open()
        await desk.send("agent", c["id"], "Does this help?")
        clock.travel(timedelta(days=6))  # sessions stay signed in for a week
        assert await sweep(db, settings) == 0
        assert await status_of(desk, c["id"]) == "open"

    async def test_resolves_after_the_wait_with_a_message_an_entry_and_events(
        self,
        desk: Desk,
        db: SessionSource,
        session: AsyncSession,
        clock: ModuleType,
        listen: Any,
    ) -> None:
        c = await desk.open()
        await desk.act("agent", c["id"], "assign", assignee_id=str(desk.users["agent"].id))
        await desk.send("agent", c["id"], "Does this help?")
        customer: Listener = await listen(user_channel(desk.users["customer"].id))
        agents: Listener = await listen(org_agents_channel(desk.org.id))

        clock.travel(WAIT - timedelta(minutes=1))
        assert await sweep(db) == 0
        clock.travel(timedelta(minutes=2))
        assert await sweep(db) == 1
        assert await sweep(db) == 0

        seen = await desk.get("customer", c["id"])
        assert seen["status"] == "resolved"
        assert seen["resolved_at"] is not None
        last = (await desk.messages("customer", c["id"]))["items"][-1]
        assert (last["type"], last["system_event"], last["sender"]) == ("system", "resolved", None)
        assert last["body"] == resolution_notice(HOURS)
        entry = await session.scalar(
            select(AuditLogEntry)
            .where(AuditLogEntry.action == "conversation.resolved")
            .where(AuditLogEntry.organization_id == desk.org.id)
        )
        assert entry is not None
        assert entry.actor_id is None
        for listener in (customer, agents):
            events = await listener.drain()
            assert [e["data"]["status"] for e in events if e["type"] == "conversation.updated"] == [
                "resolved"
            ]
            created = [e["data"] for e in events if e["type"] == "message.created"]
            assert [(m["seq"], m["system_event"]) for m in created] == [(last["seq"], "resolved")]
        # The customer may rate it now, or write again to reopen it.
        await desk.send("customer", c["id"], "Not quite")
        assert await status_of(desk, c["id"]) == "assigned"

    async def test_a_conversation_waiting_on_the_agents_stays(
        self, desk: Desk, db: SessionSource, clock: ModuleType
    ) -> None:
        unanswered = await desk.open(body="Anyone there?")
        answered_back = await desk.open(body="Help")
        await desk.send("agent", answered_back["id"], "Try this")
        await desk.send("customer", answered_back["id"], "Did not work")
        clock.travel(WAIT * 3)
        assert await sweep(db) == 0
        assert await status_of(desk, unanswered["id"]) == "open"
        assert await status_of(desk, answered_back["id"]) == "open"

    async def test_a_note_neither_counts_as_a_reply_nor_restarts_the_wait(
        self, desk: Desk, db: SessionSource, clock: ModuleType
    ) -> None:
        only_note = await desk.open()
        await desk.send("agent", only_note["id"], "Customer seems upset", internal=True)
        replied = await desk.open()
        await desk.send("agent", replied["id"], "Here is the fix")
        clock.travel(WAIT - timedelta(hours=1))
        await desk.send("agent", replied["id"], "Waiting on them", internal=True)
        clock.travel(timedelta(hours=2))
        assert await sweep(db) == 1
        assert await status_of(desk, only_note["id"]) == "open"
        assert await status_of(desk, replied["id"]) == "resolved"

    async def test_an_agent_reopening_starts_the_wait_again(
        self, desk: Desk, db: SessionSource, clock: ModuleType
    ) -> None:
        c = await desk.open()
        await desk.send("agent", c["id"], "Fixed")
        await desk.act("agent", c["id"], "resolve")
        clock.travel(WAIT * 2)
        assert (await desk.act("agent", c["id"], "reopen")).status_code == 200
        assert await sweep(db) == 0
        clock.travel(WAIT + timedelta(minutes=1))
        assert await sweep(db) == 1
        assert await status_of(desk, c["id"]) == "resolved"

    async def test_resolved_and_closed_are_left_alone(
        self, desk: Desk, db: SessionSource, session: AsyncSession, clock: ModuleType
    ) -> None:
        for action in ("resolve", "close"):
            c = await desk.open()
            await desk.send("agent", c["id"], "Reply")
            await desk.act("agent", c["id"], action)
        clock.travel(WAIT * 2)
        assert await sweep(db) == 0
        entries = await session.scalars(
            select(AuditLogEntry.actor_id).where(
                AuditLogEntry.organization_id == desk.org.id,
                AuditLogEntry.action.in_(["conversation.resolved", "conversation.closed"]),
            )
        )
        assert None not in set(entries)

    async def test_in_batches(self, desk: Desk, db: SessionSource, clock: ModuleType) -> None:
        opened = [await desk.open(subject=f"S{n}") for n in range(5)]
        for c in opened:
            await desk.send("agent", c["id"], "Reply")
        clock.travel(WAIT * 2)
        small = make_settings(SUPPORT_AUTO_RESOLVE_HOURS=HOURS, WORKER_BATCH_SIZE=2)
        assert await sweep(db, small) == 5
        assert {await status_of(desk, c["id"]) for c in opened} == {"resolved"}
