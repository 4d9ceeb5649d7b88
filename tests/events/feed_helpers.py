"""Rows of events, shifts and signups for the tests of reminders, my shifts and the feed,
written straight to the tables (the signup rules themselves are tested elsewhere)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.events.enums import EventStatus, SignupStatus
from townsquare.events.models import Event, Shift, Signup
from townsquare.kit import clock
from townsquare.orgs.models import Organization


async def make_event(
    session: AsyncSession,
    org: Organization,
    *,
    starts_at: datetime | None = None,
    days: int = 3,
    title: str = "Summer festival",
    location: str | None = "Town hall",
    timezone: str = "Europe/Berlin",
    status: EventStatus = EventStatus.published,
) -> Event:
    """An event of `days` days from `starts_at` (default: a day ago)."""
    start = starts_at or clock.now() - timedelta(days=1)
    event = Event(
        organization_id=org.id,
        title=title,
        description="",
        location=location,
        starts_at=start,
        ends_at=start + timedelta(days=days),
        timezone=timezone,
        status=status,
        published_at=clock.now() if status == EventStatus.published else None,
    )
    session.add(event)
    await session.flush()
    return event


async def make_shift(
    session: AsyncSession,
    event: Event,
    *,
    starts_at: datetime,
    hours: float = 4,
    title: str = "Bar",
    capacity: int = 10,
    location: str | None = None,
) -> Shift:
    shift = Shift(
        organization_id=event.organization_id,
        event_id=event.id,
        title=title,
        description="",
        location=location,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=hours),
        capacity=capacity,
    )
    session.add(shift)
    await session.flush()
    return shift


async def sign_up(
    session: AsyncSession,
    shift: Shift,
    user: User,
    *,
    status: SignupStatus = SignupStatus.confirmed,
) -> Signup:
    signup = Signup(
        organization_id=shift.organization_id,
        event_id=shift.event_id,
        shift_id=shift.id,
        user_id=user.id,
        status=status,
        confirmed_at=clock.now() if status == SignupStatus.confirmed else None,
        cancelled_at=clock.now() if status == SignupStatus.cancelled else None,
    )
    if status == SignupStatus.waitlisted:
        shift.waitlist_seq += 1
        signup.waitlist_order = shift.waitlist_seq
    if status == SignupStatus.confirmed:
        shift.confirmed_count += 1
    session.add(signup)
    await session.flush()
    return signup
