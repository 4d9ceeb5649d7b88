"""Reminder emails: one to each confirmed volunteer `EVENTS_REMINDER_HOURS` before a shift.

A signup is due once its shift starts within the reminder window and has not started
yet, so a worker that was down catches up on every shift still ahead and never reminds
anyone of one already under way. The claim is a single conditional UPDATE: it sets
`reminder_sent_at` only where it is still unset (or stale, below) and the signup still
confirmed, and RETURNING hands this transaction the rows it won. The reminder emails go
into the outbox in that same transaction, so a signup is reminded exactly once however
many workers sweep at the same time (PostgreSQL: the candidates are picked with SKIP
LOCKED, and a row another worker updated first fails the re-checked condition; SQLite:
one writer at a time), and a crash before the commit leaves the signup due for the next
sweep.

A shift moved later after its reminder went out is reminded again: a reminder older than
the window, for a shift still ahead and now within it, was about the old time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.email.service import enqueue_email
from townsquare.events.enums import EventStatus, SignupStatus
from townsquare.events.models import Event, Shift, Signup
from townsquare.orgs.models import Organization

TEMPLATE = "event_reminder"


def window(settings: Settings) -> timedelta:
    return timedelta(hours=settings.EVENTS_REMINDER_HOURS)


async def send_due_reminders(
    session: AsyncSession, *, now: datetime, settings: Settings
) -> tuple[int, int]:
    """Claim up to `WORKER_BATCH_SIZE` due signups and queue their reminders; returns how
    many emails were queued and how many signups were claimed (a deactivated account's
    is claimed without an email). The caller commits."""
    # Sent more than a window ago while the shift is due now: sent for an earlier time.
    not_reminded = or_(
        Signup.reminder_sent_at.is_(None), Signup.reminder_sent_at < now - window(settings)
    )
    candidates = (
        select(Signup.id)
        .join(Shift, Shift.id == Signup.shift_id)
        .join(Event, Event.id == Signup.event_id)
        .where(
            Signup.status == SignupStatus.confirmed,
            not_reminded,
            Shift.cancelled_at.is_(None),
            Shift.starts_at > now,
            Shift.starts_at <= now + window(settings),
            Event.status == EventStatus.published,
        )
        .order_by(Shift.starts_at, Signup.id)
        .limit(settings.WORKER_BATCH_SIZE)
        .with_for_update(of=Signup, skip_locked=True)
    )
    claimed = list(
        await session.scalars(
            update(Signup)
            .where(
                Signup.id.in_(candidates.scalar_subquery()),
                Signup.status == SignupStatus.confirmed,
                not_reminded,
            )
            .values(reminder_sent_at=now)
            .returning(Signup.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not claimed:
        return 0, 0
    return await _queue(session, claimed, settings=settings), len(claimed)


@dataclass(frozen=True)
class _Due:
    signup: Signup
    shift: Shift
    event: Event
    user: User
    org: Organization


async def _queue(session: AsyncSession, signup_ids: list[uuid.UUID], *, settings: Settings) -> int:
    rows = (
        await session.execute(
            select(Signup, Shift, Event, User, Organization)
            .join(Shift, Shift.id == Signup.shift_id)
            .join(Event, Event.id == Signup.event_id)
            .join(User, User.id == Signup.user_id)
            .join(Organization, Organization.id == Signup.organization_id)
            .where(Signup.id.in_(signup_ids))
            .order_by(Shift.starts_at, Signup.id)
        )
    ).all()
    queued = 0
    for signup, shift, event, user, org in rows:
        if not user.is_active:
            continue
        due = _Due(signup=signup, shift=shift, event=event, user=user, org=org)
        await enqueue_email(
            session, to=user.email, template=TEMPLATE, context=_context(due), settings=settings
        )
        queued += 1
    return queued


def _context(due: _Due) -> dict[str, object]:
    zone = _zone(due.event.timezone)
    starts = due.shift.starts_at.astimezone(zone)
    ends = due.shift.ends_at.astimezone(zone)
    return {
        "volunteer_name": due.user.display_name,
        "organization_name": due.org.name,
        "event_title": due.event.title,
        "shift_title": due.shift.title,
        "starts_at": local_time(starts),
        "ends_at": ends.strftime("%H:%M") if ends.date() == starts.date() else local_time(ends),
        "timezone": due.event.timezone,
        "location": due.shift.location or due.event.location or "",
    }


def local_time(moment: datetime) -> str:
    """`Saturday 6 June 2026, 16:00 CEST`: the wall clock of the place, zone named."""
    return f"{moment:%A} {moment.day} {moment:%B %Y, %H:%M} {moment.tzname() or ''}".rstrip()


def _zone(tzid: str) -> ZoneInfo:
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
