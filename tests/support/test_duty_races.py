"""Several workers sweeping the support duties at once, on commits that are real: every
notice is emailed exactly once and every waiting conversation resolved exactly once
(PostgreSQL claims rows with SKIP LOCKED; SQLite runs one writer at a time)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from types import ModuleType

import pytest
from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.factories import add_member, create_organization, create_user
from townsquare.config import Settings
from townsquare.db import Database, transaction
from townsquare.email.models import OutboxEmail
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import AuditLogEntry
from townsquare.storage.factory import create_storage
from townsquare.support import conversations, messages
from townsquare.support.context import SupportCaller
from townsquare.support.duties import email_notices, resolve_waiting
from townsquare.support.enums import ConversationStatus, SystemEvent
from townsquare.support.models import ChatMessage, Conversation
from townsquare.support.notices import TEMPLATE
from townsquare.worker.registry import DutyContext

pytestmark = pytest.mark.committed

CONVERSATIONS = 24
WORKERS = 4


async def waiting_conversations(database: Database, settings: Settings) -> list[uuid.UUID]:
    """`CONVERSATIONS` conversations of distinct customers, each with an agent's reply."""
    storage = create_storage(settings)
    ids = []
    try:
        async with transaction(database) as s:
            owner = await create_user(s, display_name="Owner")
            org = await create_organization(s, owner=owner)
            agent_user = await create_user(s, display_name="Agent")
            agent = SupportCaller(
                org=org,
                user=agent_user,
                membership=await add_member(s, org, agent_user, MemberRole.agent),
            )
            for n in range(CONVERSATIONS):
                customer = await create_user(s, display_name=f"Customer {n}")
                opened, _ = await conversations.open_conversation(
                    s,
                    SupportCaller(org=org, user=customer, membership=None),
                    subject=f"Question {n}",
                    body="Help",
                    client_msg_id=None,
                    settings=settings,
                )
                await messages.send_message(
                    s,
                    agent,
                    opened.id,
                    body=f"Answer {n}",
                    internal=False,
                    client_msg_id=None,
                    storage=storage,
                    settings=settings,
                )
                ids.append(opened.id)
    finally:
        await storage.close()
    return ids


def contexts(database: Database, settings: Settings) -> list[DutyContext]:
    return [DutyContext(db=database, settings=settings, worker_id=f"w{n}") for n in range(WORKERS)]


class TestRacingWorkers:
    async def test_each_notice_is_emailed_exactly_once(
        self, committed_db: Database, settings: Settings, clock: ModuleType
    ) -> None:
        await waiting_conversations(committed_db, settings)
        clock.travel(timedelta(hours=1))
        small = make_settings(WORKER_BATCH_SIZE=3)

        counts = await asyncio.gather(
            *(email_notices(ctx) for ctx in contexts(committed_db, small))
        )

        assert sum(counts) == CONVERSATIONS
        assert await email_notices(contexts(committed_db, small)[0]) == 0
        async with committed_db.session() as s:
            sent = Counter(
                await s.scalars(
                    select(OutboxEmail.to_address).where(OutboxEmail.template == TEMPLATE)
                )
            )
            due = await s.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.notice_due_at.is_not(None))
            )
        assert len(sent) == CONVERSATIONS
        assert set(sent.values()) == {1}
        assert due == 0

    async def test_each_conversation_is_resolved_exactly_once(
        self, committed_db: Database, settings: Settings, clock: ModuleType
    ) -> None:
        ids = await waiting_conversations(committed_db, settings)
        clock.travel(timedelta(hours=49))
        on = make_settings(SUPPORT_AUTO_RESOLVE_HOURS=48, WORKER_BATCH_SIZE=3)

        counts = await asyncio.gather(*(resolve_waiting(ctx) for ctx in contexts(committed_db, on)))

        assert sum(counts) == CONVERSATIONS
        assert await resolve_waiting(contexts(committed_db, on)[0]) == 0
        async with committed_db.session() as s:
            statuses = set(
                await s.scalars(select(Conversation.status).where(Conversation.id.in_(ids)))
            )
            announced = Counter(
                await s.scalars(
                    select(ChatMessage.conversation_id).where(
                        ChatMessage.system_event == SystemEvent.resolved
                    )
                )
            )
            entries = await s.scalar(
                select(func.count())
                .select_from(AuditLogEntry)
                .where(AuditLogEntry.action == "conversation.resolved")
            )
            seqs = list(await s.scalars(select(Conversation.last_seq)))
        assert statuses == {ConversationStatus.resolved}
        assert sorted(announced) == sorted(ids)
        assert set(announced.values()) == {1}
        assert entries == CONVERSATIONS
        assert set(seqs) == {3}
