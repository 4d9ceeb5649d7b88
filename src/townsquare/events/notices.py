"""Emails to volunteers, queued in the outbox in the transaction of what caused them:
promoted from a waiting list, a shift moved, a shift or a whole event cancelled, a signup
removed by the organizers. Times are written in the event's time zone."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.email.service import enqueue_email
from townsquare.events.enums import ACTIVE_SIGNUP_STATUSES
from townsquare.events.models import Event, Shift, Signup
from townsquare.orgs.models import Organization


def when(starts_at: datetime, ends_at: datetime, timezone: str) -> str:
    """`Saturday 5 December 2026, 09:00-13:00 (Europe/Paris)`, in the event's zone."""
    zone = ZoneInfo(timezone)
    start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    day = f"{start:%A} {start.day} {start:%B %Y}"
    if start.date() == end.date():
        return f"{day}, {start:%H:%M}-{end:%H:%M} ({timezone})"
    return f"{day}, {start:%H:%M} to {end:%A} {end.day} {end:%B %Y}, {end:%H:%M} ({timezone})"


def where(shift: Shift, event: Event) -> str:
    return shift.location or event.location or ""


def _shift_context(
    user: User, shift: Shift, event: Event, organization: Organization
) -> dict[str, object]:
    return {
        "volunteer_name": user.display_name,
        "organization_name": organization.name,
        "event_title": event.title,
        "shift_title": shift.title,
        "shift_time": when(shift.starts_at, shift.ends_at, event.timezone),
        "location": where(shift, event),
    }


async def _organization(session: AsyncSession, organization_id: uuid.UUID) -> Organization:
    organization = await session.get(Organization, organization_id)
    assert organization is not None
    return organization


async def active_volunteers(
    session: AsyncSession, shift_ids: Sequence[uuid.UUID]
) -> list[tuple[Signup, User]]:
    """The confirmed and waitlisted signups of these shifts with their people."""
    if not shift_ids:
        return []
    rows = await session.execute(
        select(Signup, User)
        .join(User, User.id == Signup.user_id)
        .where(Signup.shift_id.in_(shift_ids), Signup.status.in_(ACTIVE_SIGNUP_STATUSES))
        .order_by(Signup.created_at, Signup.id)
    )
    return [(signup, user) for signup, user in rows.all()]


async def promoted(
    session: AsyncSession,
    promotions: Iterable[tuple[Signup, User]],
    shift: Shift,
    event: Event,
    settings: Settings,
) -> None:
    organization = await _organization(session, event.organization_id)
    for _signup, user in promotions:
        await enqueue_email(
            session,
            to=user.email,
            template="shift_promoted",
            context=_shift_context(user, shift, event, organization),
            settings=settings,
        )


async def shift_changed(
    session: AsyncSession,
    shift: Shift,
    event: Event,
    *,
    old_time: str,
    old_location: str,
    settings: Settings,
) -> None:
    """Tell everyone on the shift its new time and place."""
    organization = await _organization(session, event.organization_id)
    for _signup, user in await active_volunteers(session, [shift.id]):
        context = _shift_context(user, shift, event, organization)
        context |= {"old_shift_time": old_time, "old_location": old_location}
        await enqueue_email(
            session, to=user.email, template="shift_changed", context=context, settings=settings
        )


async def shift_cancelled(
    session: AsyncSession, shift: Shift, event: Event, settings: Settings
) -> None:
    organization = await _organization(session, event.organization_id)
    for _signup, user in await active_volunteers(session, [shift.id]):
        await enqueue_email(
            session,
            to=user.email,
            template="shift_cancelled",
            context=_shift_context(user, shift, event, organization),
            settings=settings,
        )


async def event_cancelled(
    session: AsyncSession, event: Event, shifts: Sequence[Shift], settings: Settings
) -> None:
    """One email per person signed up for any shift of the event, naming their shifts."""
    organization = await _organization(session, event.organization_id)
    by_id = {shift.id: shift for shift in shifts}
    people: dict[uuid.UUID, tuple[User, list[str]]] = {}
    for signup, user in await active_volunteers(session, list(by_id)):
        shift = by_id[signup.shift_id]
        line = f"{shift.title}: {when(shift.starts_at, shift.ends_at, event.timezone)}"
        people.setdefault(user.id, (user, []))[1].append(line)
    for user, lines in people.values():
        await enqueue_email(
            session,
            to=user.email,
            template="event_cancelled",
            context={
                "volunteer_name": user.display_name,
                "organization_name": organization.name,
                "event_title": event.title,
                "event_time": when(event.starts_at, event.ends_at, event.timezone),
                "shift_lines": "\n".join(lines),
            },
            settings=settings,
        )


async def signup_removed(
    session: AsyncSession, user: User, shift: Shift, event: Event, settings: Settings
) -> None:
    """The organizers cancelled this person's signup."""
    organization = await _organization(session, event.organization_id)
    await enqueue_email(
        session,
        to=user.email,
        template="shift_signup_removed",
        context=_shift_context(user, shift, event, organization),
        settings=settings,
    )
