"""The reminder duty: one email (text and HTML, through the outbox) to each confirmed
volunteer `EVENTS_REMINDER_HOURS` before their shift, never for a shift that started or
was cancelled, caught up after the worker was down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from tests.events.feed_helpers import make_event, make_shift, sign_up
from tests.factories import add_member, create_organization, create_user
from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db import SessionSource
from townsquare.email.models import OutboxEmail
from townsquare.events.duties import send_reminders
from townsquare.events.enums import EventStatus, SignupStatus
from townsquare.events.models import Signup
from townsquare.events.reminders import TEMPLATE
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Organization
from townsquare.worker.registry import DutyContext, load_duties

NOW = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)


async def sweep(db: SessionSource, settings: Settings) -> int:
    return await send_reminders(DutyContext(db=db, settings=settings, worker_id="tests"))


async def reminders_to(session: AsyncSession, user: User) -> list[tuple[str, str, str | None]]:
    rows = await session.execute(
        select(OutboxEmail.subject, OutboxEmail.text_body, OutboxEmail.html_body)
        .where(OutboxEmail.to_address == user.email, OutboxEmail.template == TEMPLATE)
        .order_by(OutboxEmail.created_at)
    )
    return [(subject, text, html) for subject, text, html in rows.all()]


async def volunteer(session: AsyncSession, org: Organization, name: str) -> User:
    user = await create_user(session, display_name=name)
    await add_member(session, org, user, MemberRole.member)
    return user


async def festival_org(session: AsyncSession) -> Organization:
    owner = await create_user(session, display_name="Owner")
    return await create_organization(session, owner=owner, name="Friends of the Park")


class TestRegistration:
    def test_the_duty_is_registered(self) -> None:
        assert "events.reminders" in {d.name for d in load_duties()}


class TestReminder:
    async def test_due_shift_is_reminded_once_in_text_and_html(
        self, db: SessionSource, session: AsyncSession, settings: Settings, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org = await festival_org(session)
        ana = await volunteer(session, org, "Ana")
        event = await make_event(session, org, location="Park <gate> 3", starts_at=NOW)
        # 28 March 15:00 UTC is 16:00 in Berlin (CET, before the change of the 29th).
        shift = await make_shift(session, event, starts_at=NOW + timedelta(hours=27), hours=4)
        await sign_up(session, shift, ana)

        assert await sweep(db, settings) == 0
        clock.travel(timedelta(hours=3, seconds=1))
        assert await sweep(db, settings) == 1
        assert await sweep(db, settings) == 0
        clock.travel(timedelta(hours=12))
        assert await sweep(db, settings) == 0

        ((subject, text, html),) = await reminders_to(session, ana)
        assert subject == "Reminder: Bar at Summer festival, Saturday 28 March 2026, 16:00 CET"
        assert "Hello Ana," in text
        assert "Friends of the Park" in text
        assert "Saturday 28 March 2026, 16:00 CET to 20:00 (Europe/Berlin)" in text
        assert "Where: Park <gate> 3" in text
        assert html is not None
        assert "Park &lt;gate&gt; 3" in html
        assert "Saturday 28 March 2026, 16:00 CET to 20:00" in html

    async def test_window_follows_the_setting(
        self, db: SessionSource, session: AsyncSession, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org = await festival_org(session)
        ana = await volunteer(session, org, "Ana")
        event = await make_event(session, org)
        shift = await make_shift(session, event, starts_at=NOW + timedelta(hours=3))
        await sign_up(session, shift, ana)
        two_hours = make_settings(EVENTS_REMINDER_HOURS=2)

        assert await sweep(db, two_hours) == 0
        clock.travel(timedelta(hours=1))
        assert await sweep(db, two_hours) == 1
        assert len(await reminders_to(session, ana)) == 1

    async def test_only_confirmed_signups_of_live_shifts_are_reminded(
        self, db: SessionSource, session: AsyncSession, settings: Settings, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org = await festival_org(session)
        confirmed, waitlisted, cancelled, of_cancelled_shift, of_cancelled_event = [
            await volunteer(session, org, name) for name in ("C", "W", "X", "S", "E")
        ]
        event = await make_event(session, org)
        shift = await make_shift(session, event, starts_at=NOW + timedelta(hours=5))
        await sign_up(session, shift, confirmed)
        await sign_up(session, shift, waitlisted, status=SignupStatus.waitlisted)
        await sign_up(session, shift, cancelled, status=SignupStatus.cancelled)
        gone = await make_shift(session, event, starts_at=NOW + timedelta(hours=6))
        await sign_up(session, gone, of_cancelled_shift)
        gone.cancelled_at = NOW - timedelta(hours=1)
        called_off = await make_event(session, org, status=EventStatus.cancelled)
        late = await make_shift(session, called_off, starts_at=NOW + timedelta(hours=7))
        await sign_up(session, late, of_cancelled_event)
        await session.flush()

        assert await sweep(db, settings) == 1

        assert len(await reminders_to(session, confirmed)) == 1
        for user in (waitlisted, cancelled, of_cancelled_shift, of_cancelled_event):
            assert await reminders_to(session, user) == []

    async def test_a_shift_that_started_is_never_reminded(
        self, db: SessionSource, session: AsyncSession, settings: Settings, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org = await festival_org(session)
        ana = await volunteer(session, org, "Ana")
        event = await make_event(session, org)
        started = await make_shift(session, event, starts_at=NOW - timedelta(minutes=1))
        await sign_up(session, started, ana)
        starting = await make_shift(session, event, starts_at=NOW, title="Kitchen")
        await sign_up(session, starting, ana)

        assert await sweep(db, settings) == 0
        assert await reminders_to(session, ana) == []
        signups = list(await session.scalars(select(Signup.reminder_sent_at)))
        assert signups == [None, None]

    async def test_a_deactivated_account_gets_nothing_and_blocks_nobody(
        self, db: SessionSource, session: AsyncSession, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org = await festival_org(session)
        event = await make_event(session, org)
        shift = await make_shift(session, event, starts_at=NOW + timedelta(hours=2))
        gone = await volunteer(session, org, "Gone")
        gone.is_active = False
        await sign_up(session, shift, gone)
        later = await make_shift(session, event, starts_at=NOW + timedelta(hours=3), title="Door")
        ana = await volunteer(session, org, "Ana")
        await sign_up(session, later, ana)

        assert await sweep(db, make_settings(WORKER_BATCH_SIZE=1)) == 1

        assert await reminders_to(session, gone) == []
        assert len(await reminders_to(session, ana)) == 1


class TestMovedShift:
    async def test_a_shift_moved_later_is_reminded_again_before_its_new_time(
        self, db: SessionSource, session: AsyncSession, settings: Settings, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org = await festival_org(session)
        ana = await volunteer(session, org, "Ana")
        event = await make_event(session, org, days=10)
        shift = await make_shift(session, event, starts_at=NOW + timedelta(hours=10))
        await sign_up(session, shift, ana)
        assert await sweep(db, settings) == 1
        shift.starts_at = NOW + timedelta(days=3)
        shift.ends_at = shift.starts_at + timedelta(hours=4)
        await session.flush()

        assert await sweep(db, settings) == 0
        clock.travel(timedelta(days=2, hours=1))
        assert await sweep(db, settings) == 1
        assert await sweep(db, settings) == 0

        first, second = await reminders_to(session, ana)
        assert "Friday 27 March 2026, 23:00 CET" in first[0]
        assert "Monday 30 March 2026, 14:00 CEST" in second[0]

    async def test_a_shift_moved_earlier_is_not_reminded_twice(
        self, db: SessionSource, session: AsyncSession, settings: Settings, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org = await festival_org(session)
        ana = await volunteer(session, org, "Ana")
        event = await make_event(session, org, days=10)
        shift = await make_shift(session, event, starts_at=NOW + timedelta(hours=20))
        await sign_up(session, shift, ana)
        assert await sweep(db, settings) == 1
        shift.starts_at = NOW + timedelta(hours=5)
        shift.ends_at = shift.starts_at + timedelta(hours=4)
        await session.flush()

        for _ in range(4):
            clock.travel(timedelta(hours=1))
            assert await sweep(db, settings) == 0
        assert len(await reminders_to(session, ana)) == 1


class TestDowntime:
    async def test_worker_back_after_downtime_catches_up_on_shifts_still_ahead(
        self, db: SessionSource, session: AsyncSession, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org = await festival_org(session)
        event = await make_event(session, org, days=5)
        users = {}
        # Shifts 10 h, 20 h, 30 h, 40 h and 60 h ahead; the worker is down for 25 h.
        for hours in (10, 20, 30, 40, 60):
            shift = await make_shift(session, event, starts_at=NOW + timedelta(hours=hours))
            users[hours] = await volunteer(session, org, f"V{hours}")
            await sign_up(session, shift, users[hours])
        clock.travel(timedelta(hours=25))
        small = make_settings(WORKER_BATCH_SIZE=1)

        assert await sweep(db, small) == 2

        reminded = {hours for hours, user in users.items() if await reminders_to(session, user)}
        assert reminded == {30, 40}
        clock.travel(timedelta(hours=12))
        assert await sweep(db, small) == 1
        assert len(await reminders_to(session, users[60])) == 1
        assert await reminders_to(session, users[10]) == []
        assert await reminders_to(session, users[20]) == []
