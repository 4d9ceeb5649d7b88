"""Four workers sweeping the reminders at once, on commits that are real: every confirmed
volunteer is emailed exactly once (PostgreSQL claims rows with SKIP LOCKED and a
conditional UPDATE; SQLite runs one writer at a time)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest
from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.events.feed_helpers import make_event, make_shift, sign_up
from tests.factories import add_member, create_organization, create_user
from townsquare.db import Database, transaction
from townsquare.email.models import OutboxEmail
from townsquare.events.duties import send_reminders
from townsquare.events.models import Signup
from townsquare.events.reminders import TEMPLATE
from townsquare.orgs.enums import MemberRole
from townsquare.worker.registry import DutyContext

pytestmark = pytest.mark.committed

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
SHIFTS = 6
PER_SHIFT = 8
WORKERS = 4


async def staffed_shifts(database: Database) -> set[str]:
    """`SHIFTS` shifts within the next hours with `PER_SHIFT` confirmed volunteers each."""
    addresses = set()
    async with transaction(database) as s:
        owner = await create_user(s, display_name="Owner")
        org = await create_organization(s, owner=owner)
        event = await make_event(s, org, starts_at=NOW)
        for n in range(SHIFTS):
            shift = await make_shift(s, event, starts_at=NOW + timedelta(hours=1 + n))
            for m in range(PER_SHIFT):
                user = await create_user(s, display_name=f"Volunteer {n}.{m}")
                await add_member(s, org, user, MemberRole.member)
                await sign_up(s, shift, user)
                addresses.add(user.email)
    return addresses


class TestRacingWorkers:
    async def test_each_volunteer_is_reminded_exactly_once(
        self, committed_db: Database, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        addresses = await staffed_shifts(committed_db)
        small = make_settings(WORKER_BATCH_SIZE=3)
        workers = [
            DutyContext(db=committed_db, settings=small, worker_id=f"w{n}") for n in range(WORKERS)
        ]

        counts = await asyncio.gather(*(send_reminders(ctx) for ctx in workers))

        assert sum(counts) == SHIFTS * PER_SHIFT
        assert await send_reminders(workers[0]) == 0
        async with committed_db.session() as s:
            sent = Counter(
                await s.scalars(
                    select(OutboxEmail.to_address).where(OutboxEmail.template == TEMPLATE)
                )
            )
            unmarked = await s.scalar(
                select(func.count()).select_from(Signup).where(Signup.reminder_sent_at.is_(None))
            )
        assert set(sent) == addresses
        assert set(sent.values()) == {1}
        assert unmarked == 0
