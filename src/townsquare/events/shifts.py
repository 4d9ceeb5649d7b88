"""Shifts of an event: create one or a batch (all or none), read with fill counts, update
(time, place, capacity), cancel or delete.

A shift's row lock (`lock_shift`) guards its confirmed count: signups, cancellations,
promotions and capacity changes all take it first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.config import Settings
from townsquare.events import events, notices, waitlist
from townsquare.events.enums import EventStatus, SignupStatus
from townsquare.events.errors import (
    CapacityBelowSignups,
    EventCancelled,
    ShiftCancelled,
    ShiftNotFound,
    ShiftOutsideEvent,
)
from townsquare.events.models import Event, Shift, Signup
from townsquare.kit import clock
from townsquare.kit.pagination import PageParams, paginate
from townsquare.orgs import audit
from townsquare.orgs.context import OrgContext


@dataclass(frozen=True)
class ShiftSpec:
    title: str
    description: str
    location: str | None
    starts_at: datetime
    ends_at: datetime
    capacity: int


@dataclass(frozen=True)
class ShiftView:
    shift: Shift
    waitlist_count: int
    no_show_count: int


_LOCK_SHIFT = (
    select(Shift)
    .where(Shift.id == bindparam("id"))
    .with_for_update(key_share=True)
    .execution_options(populate_existing=True)
)


async def lock_shift(session: AsyncSession, shift_id: uuid.UUID) -> Shift | None:
    """The shift, read afresh under its row lock (PostgreSQL `FOR NO KEY UPDATE`: it queues
    every other lock of the row but not the key-share locks of rows inserted elsewhere that
    reference it; a SQLite write transaction holds the database lock already)."""
    shift: Shift | None = await session.scalar(_LOCK_SHIFT, {"id": shift_id})
    return shift


async def get_shift(
    session: AsyncSession,
    ctx: OrgContext,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> tuple[Event, Shift]:
    """The event (as `events.get_event` finds it) and its shift, or 404."""
    event = await events.get_event(session, ctx, event_id)
    shift = (
        await lock_shift(session, shift_id) if for_update else await session.get(Shift, shift_id)
    )
    if shift is None or shift.event_id != event.id:
        raise ShiftNotFound()
    return event, shift


async def views(session: AsyncSession, shifts: list[Shift]) -> list[ShiftView]:
    counted = await waitlist.counts(session, [s.id for s in shifts])
    return [
        ShiftView(
            shift,
            counted.get(shift.id, {}).get(SignupStatus.waitlisted, 0),
            counted.get(shift.id, {}).get(SignupStatus.no_show, 0),
        )
        for shift in shifts
    ]


async def list_shifts(
    session: AsyncSession, ctx: OrgContext, event_id: uuid.UUID, paging: PageParams
) -> tuple[list[ShiftView], int]:
    """The event's shifts by start time, cancelled ones included, with fill counts."""
    event = await events.get_event(session, ctx, event_id)
    statement = select(Shift).where(Shift.event_id == event.id).order_by(Shift.starts_at, Shift.id)
    shifts, total = await paginate(session, statement, paging)
    return await views(session, shifts), total


def _check_inside(event: Event, starts_at: datetime, ends_at: datetime) -> None:
    events.check_range(starts_at, ends_at)
    if starts_at < event.starts_at or ends_at > event.ends_at:
        raise ShiftOutsideEvent()


async def create_shifts(
    session: AsyncSession, ctx: OrgContext, event_id: uuid.UUID, specs: list[ShiftSpec]
) -> list[Shift]:
    """Create every shift or none: each one is checked before any is written."""
    event = await events.get_event(session, ctx, event_id, for_update=True)
    if event.status == EventStatus.cancelled:
        raise EventCancelled()
    for spec in specs:
        _check_inside(event, spec.starts_at, spec.ends_at)
    shifts = [
        Shift(
            organization_id=ctx.org.id,
            event_id=event.id,
            title=spec.title,
            description=spec.description,
            location=spec.location,
            starts_at=spec.starts_at,
            ends_at=spec.ends_at,
            capacity=spec.capacity,
            confirmed_count=0,
            waitlist_seq=0,
            sequence=0,
        )
        for spec in specs
    ]
    session.add_all(shifts)
    await session.flush()
    return shifts


async def update_shift(
    session: AsyncSession,
    ctx: OrgContext,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    settings: Settings,
) -> Shift:
    """Apply `changes`. A new time or place grows `sequence` and emails the volunteers; a
    capacity below the confirmed count is refused; a larger one promotes from the list."""
    event = await events.get_event(session, ctx, event_id, for_update=True)
    _, shift = await get_shift(session, ctx, event_id, shift_id, for_update=True)
    if shift.cancelled_at is not None:
        raise ShiftCancelled()
    if event.status == EventStatus.cancelled:
        raise EventCancelled()
    starts_at = changes.get("starts_at", shift.starts_at)
    ends_at = changes.get("ends_at", shift.ends_at)
    _check_inside(event, starts_at, ends_at)
    capacity = changes.get("capacity", shift.capacity)
    if capacity < shift.confirmed_count:
        raise CapacityBelowSignups(extra={"confirmed_count": shift.confirmed_count})
    old_time = notices.when(shift.starts_at, shift.ends_at, event.timezone)
    old_location = notices.where(shift, event)
    for field, value in changes.items():
        setattr(shift, field, value)
    moved = (old_time, old_location) != (
        notices.when(shift.starts_at, shift.ends_at, event.timezone),
        notices.where(shift, event),
    )
    if moved:
        shift.sequence += 1
    await session.flush()
    if moved:
        await notices.shift_changed(
            session, shift, event, old_time=old_time, old_location=old_location, settings=settings
        )
    await waitlist.promote(session, shift, event, now=clock.now(), settings=settings)
    return shift


async def delete_shift(
    session: AsyncSession,
    ctx: OrgContext,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    *,
    settings: Settings,
) -> None:
    """Delete a shift nobody ever signed up for; one with signups is cancelled instead (kept
    so that calendars show it cancelled) and everyone on it is emailed."""
    event = await events.get_event(session, ctx, event_id, for_update=True)
    _, shift = await get_shift(session, ctx, event_id, shift_id, for_update=True)
    if shift.cancelled_at is not None:
        return
    had_signups = await session.scalar(select(exists().where(Signup.shift_id == shift.id)))
    if not had_signups:
        await session.execute(delete(Shift).where(Shift.id == shift.id))
        return
    shift.cancelled_at = clock.now()
    shift.sequence += 1
    await session.flush()
    await notices.shift_cancelled(session, shift, event, settings)
    await audit.record(session, ctx, "shift.cancelled", target=("shift", shift.id))
