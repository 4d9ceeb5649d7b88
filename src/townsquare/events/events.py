"""Events: create, read, list, update (moving, publishing, cancelling), delete.

Every function takes the caller's `OrgContext` and filters by `ctx.org.id`. Members who may
not manage events see published and cancelled events only; a draft is not found for them.
An event row about to change is read with its row lock, then its shifts with theirs
(`FOR NO KEY UPDATE`: a signup inserted meanwhile, which holds its shift's lock and takes a
key-share lock on the event, must not wait on the event while this waits on the shift).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.cms.sanitize import sanitize_html
from townsquare.config import Settings
from townsquare.events import notices
from townsquare.events.enums import ACTIVE_SIGNUP_STATUSES, EventStatus
from townsquare.events.errors import (
    EventCancelled,
    EventNotFound,
    InvalidStatusTransition,
    InvalidTimeRange,
    ShiftOutsideEvent,
)
from townsquare.events.models import Event, Shift, Signup
from townsquare.kit import clock
from townsquare.kit.pagination import PageParams, paginate
from townsquare.orgs import audit
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import Permission
from townsquare.orgs.permissions import role_has


@dataclass(frozen=True)
class EventView:
    event: Event
    shift_count: int


def manages(ctx: OrgContext) -> bool:
    return role_has(ctx.role, Permission.events_manage)


def check_range(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise InvalidTimeRange()


# Built once: every signup and shift request runs one (building a statement costs more
# than its parameters).
_EVENT = select(Event).where(
    Event.id == bindparam("id"), Event.organization_id == bindparam("org_id")
)
_EVENT_FOR_UPDATE = _EVENT.with_for_update(key_share=True).execution_options(populate_existing=True)


async def get_event(
    session: AsyncSession, ctx: OrgContext, event_id: uuid.UUID, *, for_update: bool = False
) -> Event:
    """The org's event, or 404 `event_not_found` (also another org's, and a draft for a
    member who does not manage events)."""
    event = await session.scalar(
        _EVENT_FOR_UPDATE if for_update else _EVENT, {"id": event_id, "org_id": ctx.org.id}
    )
    if event is None or (event.status == EventStatus.draft and not manages(ctx)):
        raise EventNotFound()
    return event


async def view(session: AsyncSession, event: Event) -> EventView:
    count = await session.scalar(select(func.count()).where(Shift.event_id == event.id))
    return EventView(event, int(count or 0))


async def list_events(
    session: AsyncSession,
    ctx: OrgContext,
    paging: PageParams,
    *,
    status: EventStatus | None = None,
    upcoming: bool = False,
) -> tuple[list[EventView], int]:
    """Events by start time (soonest first); `upcoming`: those not ended yet."""
    shift_count = (
        select(func.count()).where(Shift.event_id == Event.id).correlate(Event).scalar_subquery()
    )
    statement = (
        select(Event, shift_count)
        .where(Event.organization_id == ctx.org.id)
        .order_by(Event.starts_at, Event.id)
    )
    if status is not None:
        statement = statement.where(Event.status == status)
    if not manages(ctx):
        statement = statement.where(Event.status != EventStatus.draft)
    if upcoming:
        statement = statement.where(Event.ends_at > clock.now())
    rows, total = await paginate(session, statement, paging)
    return [EventView(event, int(count)) for event, count in rows], total


async def create_event(
    session: AsyncSession,
    ctx: OrgContext,
    *,
    title: str,
    description: str,
    location: str | None,
    starts_at: datetime,
    ends_at: datetime,
    timezone: str | None,
    status: EventStatus,
) -> Event:
    check_range(starts_at, ends_at)
    if status == EventStatus.cancelled:
        raise InvalidStatusTransition("A new event is a draft or published.")
    now = clock.now()
    event = Event(
        organization_id=ctx.org.id,
        title=title,
        description=sanitize_html(description),
        location=location,
        starts_at=starts_at,
        ends_at=ends_at,
        timezone=timezone or ctx.org.timezone,
        status=status,
        published_at=now if status == EventStatus.published else None,
        created_by_id=ctx.user.id,
    )
    session.add(event)
    await session.flush()
    await audit.record(session, ctx, "event.created", target=("event", event.id))
    return event


async def _shifts(session: AsyncSession, event: Event) -> list[Shift]:
    rows = await session.scalars(
        select(Shift)
        .where(Shift.event_id == event.id)
        .order_by(Shift.starts_at, Shift.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def _has_active_signups(session: AsyncSession, event: Event) -> bool:
    found = await session.scalar(
        select(
            exists().where(Signup.event_id == event.id, Signup.status.in_(ACTIVE_SIGNUP_STATUSES))
        )
    )
    return bool(found)


def _shown(shift: Shift, event: Event) -> tuple[str, str]:
    """What a volunteer is told of a shift: its time in the event's zone and its place."""
    return notices.when(shift.starts_at, shift.ends_at, event.timezone), notices.where(shift, event)


async def update_event(
    session: AsyncSession,
    ctx: OrgContext,
    event_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    settings: Settings,
) -> Event:
    """Apply `changes` (the fields sent). Moving both times by one amount moves the shifts
    with the event and emails their volunteers; a change of place emails them too."""
    event = await get_event(session, ctx, event_id, for_update=True)
    if event.status == EventStatus.cancelled:
        raise EventCancelled()
    new_status = changes.pop("status", event.status)
    starts_at = changes.get("starts_at", event.starts_at)
    ends_at = changes.get("ends_at", event.ends_at)
    check_range(starts_at, ends_at)
    shifts = [s for s in await _shifts(session, event) if s.cancelled_at is None]
    before = {shift.id: _shown(shift, event) for shift in shifts}
    moved_by = starts_at - event.starts_at
    if moved_by and ends_at - event.ends_at == moved_by:
        for shift in shifts:
            shift.starts_at += moved_by
            shift.ends_at += moved_by
    elif any(s.starts_at < starts_at or s.ends_at > ends_at for s in shifts):
        raise ShiftOutsideEvent("Every shift must stay inside the event's new time.")
    if "description" in changes:
        changes["description"] = sanitize_html(changes["description"])
    timezone_changed = changes.get("timezone", event.timezone) != event.timezone
    for field, value in changes.items():
        setattr(event, field, value)
    for shift in shifts:
        if _shown(shift, event) != before[shift.id] or timezone_changed:
            shift.sequence += 1
    if new_status != event.status:
        await _change_status(session, ctx, event, EventStatus(new_status), shifts, settings)
    await session.flush()
    if new_status == EventStatus.cancelled:
        return event
    for shift in shifts:
        old_time, old_location = before[shift.id]
        if _shown(shift, event) != (old_time, old_location):
            await notices.shift_changed(
                session,
                shift,
                event,
                old_time=old_time,
                old_location=old_location,
                settings=settings,
            )
    return event


async def _change_status(
    session: AsyncSession,
    ctx: OrgContext,
    event: Event,
    status: EventStatus,
    shifts: list[Shift],
    settings: Settings,
) -> None:
    if status == EventStatus.cancelled:
        await cancel_event(session, ctx, event, shifts, settings=settings)
        return
    if status == EventStatus.draft and await _has_active_signups(session, event):
        raise InvalidStatusTransition(
            "Volunteers are signed up for this event; cancel it instead of unpublishing it."
        )
    event.status = status
    if status == EventStatus.published and event.published_at is None:
        event.published_at = clock.now()
    await audit.record(session, ctx, f"event.{status.value}", target=("event", event.id))


async def cancel_event(
    session: AsyncSession,
    ctx: OrgContext,
    event: Event,
    shifts: list[Shift],
    *,
    settings: Settings,
) -> None:
    """Cancel the event and its shifts (kept, so calendars show them cancelled) and email
    everyone signed up. Signups keep their status: they say who was on the shift."""
    now = clock.now()
    event.status = EventStatus.cancelled
    event.cancelled_at = now
    for shift in shifts:
        if shift.cancelled_at is None:
            shift.cancelled_at = now
            shift.sequence += 1
    await session.flush()
    await notices.event_cancelled(session, event, shifts, settings)
    await audit.record(session, ctx, "event.cancelled", target=("event", event.id))


async def delete_event(
    session: AsyncSession, ctx: OrgContext, event_id: uuid.UUID, *, settings: Settings
) -> None:
    """Delete an event nobody ever signed up for; one with signups is cancelled instead
    (and kept), so its volunteers are told and their calendars show it cancelled."""
    event = await get_event(session, ctx, event_id, for_update=True)
    if event.status == EventStatus.cancelled:
        return
    had_signups = await session.scalar(select(exists().where(Signup.event_id == event.id)))
    if had_signups:
        await cancel_event(session, ctx, event, await _shifts(session, event), settings=settings)
        return
    await session.execute(delete(Event).where(Event.id == event.id))
    await audit.record(
        session, ctx, "event.deleted", target=("event", event.id), data={"title": event.title}
    )
