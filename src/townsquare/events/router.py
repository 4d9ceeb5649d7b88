"""Management endpoints of events and their shifts (`events:manage`); members read the
published events and their shifts (fill counts, no names). Signups: `signups_router`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, status

from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.events import events, schemas, shifts
from townsquare.events.deps import EventsManager, EventsMember
from townsquare.events.enums import EventStatus
from townsquare.events.responses import event_out, shift_out
from townsquare.kit.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/orgs/{org}/events", tags=["events"], route_class=TransactionalRoute)

Paging = Annotated[PageParams, Depends(page_params)]
EVENT = "/{event_id}"
SHIFT = "/{event_id}/shifts/{shift_id}"
_RANGE: dict[int | str, dict[str, Any]] = {
    422: {"description": "`invalid_time_range`, `shift_outside_event`"}
}


# --- events ----------------------------------------------------------------------------------


@router.post(
    "", response_model=schemas.Event, status_code=status.HTTP_201_CREATED, responses=_RANGE
)
async def create_event(
    ctx: EventsManager, body: schemas.EventCreate, session: DbSession
) -> schemas.Event:
    """A new event (a draft unless `status` says `published`); the description is
    sanitized like an article body."""
    event = await events.create_event(
        session,
        ctx,
        title=body.title,
        description=body.description,
        location=body.location,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        timezone=body.timezone,
        status=body.status,
    )
    return event_out(events.EventView(event, 0))


@router.get("", response_model=Page[schemas.Event])
async def list_events(
    ctx: EventsMember,
    session: DbSession,
    paging: Paging,
    status: EventStatus | None = None,
    upcoming: bool = False,
) -> Page[schemas.Event]:
    """Events by start time; drafts only for those who manage events."""
    views, total = await events.list_events(session, ctx, paging, status=status, upcoming=upcoming)
    return Page[schemas.Event].of([event_out(v) for v in views], paging, total)


@router.get(EVENT, response_model=schemas.Event)
async def get_event(ctx: EventsMember, event_id: uuid.UUID, session: DbSession) -> schemas.Event:
    event = await events.get_event(session, ctx, event_id)
    return event_out(await events.view(session, event))


@router.patch(
    EVENT,
    response_model=schemas.Event,
    responses={
        **_RANGE,
        409: {"description": "`event_cancelled`, `invalid_status_transition`"},
    },
)
async def update_event(
    ctx: EventsManager,
    event_id: uuid.UUID,
    body: schemas.EventUpdate,
    session: DbSession,
    settings: AppSettings,
) -> schemas.Event:
    """Change fields; `status` publishes, unpublishes (none signed up) or cancels (emails
    everyone signed up). Moving the event moves its shifts and emails their volunteers."""
    event = await events.update_event(
        session, ctx, event_id, body.model_dump(exclude_unset=True), settings=settings
    )
    return event_out(await events.view(session, event))


@router.delete(EVENT, status_code=status.HTTP_204_NO_CONTENT)
async def delete_event(
    ctx: EventsManager, event_id: uuid.UUID, session: DbSession, settings: AppSettings
) -> None:
    """Delete an event nobody signed up for; one with signups is cancelled (and kept)."""
    await events.delete_event(session, ctx, event_id, settings=settings)


# --- shifts ----------------------------------------------------------------------------------


def _spec(body: schemas.ShiftCreate) -> shifts.ShiftSpec:
    return shifts.ShiftSpec(
        title=body.title,
        description=body.description,
        location=body.location,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        capacity=body.capacity,
    )


@router.post(
    "/{event_id}/shifts",
    response_model=schemas.Shift,
    status_code=status.HTTP_201_CREATED,
    responses={**_RANGE, 409: {"description": "`event_cancelled`"}},
)
async def create_shift(
    ctx: EventsManager, event_id: uuid.UUID, body: schemas.ShiftCreate, session: DbSession
) -> schemas.Shift:
    """One shift, inside its event's time."""
    (shift,) = await shifts.create_shifts(session, ctx, event_id, [_spec(body)])
    return shift_out(shifts.ShiftView(shift, 0, 0))


@router.post(
    "/{event_id}/shifts/batch",
    response_model=list[schemas.Shift],
    status_code=status.HTTP_201_CREATED,
    responses={**_RANGE, 409: {"description": "`event_cancelled`"}},
)
async def create_shifts(
    ctx: EventsManager, event_id: uuid.UUID, body: schemas.ShiftBatch, session: DbSession
) -> list[schemas.Shift]:
    """Several shifts at once: all are created, or none (the first bad one answers)."""
    made = await shifts.create_shifts(session, ctx, event_id, [_spec(s) for s in body.shifts])
    return [shift_out(shifts.ShiftView(shift, 0, 0)) for shift in made]


@router.get("/{event_id}/shifts", response_model=Page[schemas.Shift])
async def list_shifts(
    ctx: EventsMember, event_id: uuid.UUID, session: DbSession, paging: Paging
) -> Page[schemas.Shift]:
    """The event's shifts by start time with fill counts (cancelled ones too)."""
    views, total = await shifts.list_shifts(session, ctx, event_id, paging)
    return Page[schemas.Shift].of([shift_out(v) for v in views], paging, total)


@router.get(SHIFT, response_model=schemas.Shift)
async def get_shift(
    ctx: EventsMember, event_id: uuid.UUID, shift_id: uuid.UUID, session: DbSession
) -> schemas.Shift:
    _, shift = await shifts.get_shift(session, ctx, event_id, shift_id)
    (view,) = await shifts.views(session, [shift])
    return shift_out(view)


@router.patch(
    SHIFT,
    response_model=schemas.Shift,
    responses={
        **_RANGE,
        409: {"description": "`capacity_below_signups`, `shift_cancelled`, `event_cancelled`"},
    },
)
async def update_shift(
    ctx: EventsManager,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    body: schemas.ShiftUpdate,
    session: DbSession,
    settings: AppSettings,
) -> schemas.Shift:
    """Change fields. A new time or place emails everyone signed up; more capacity promotes
    from the waiting list; less than the confirmed count is a 409."""
    shift = await shifts.update_shift(
        session, ctx, event_id, shift_id, body.model_dump(exclude_unset=True), settings=settings
    )
    (view,) = await shifts.views(session, [shift])
    return shift_out(view)


@router.delete(SHIFT, status_code=status.HTTP_204_NO_CONTENT)
async def delete_shift(
    ctx: EventsManager,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    session: DbSession,
    settings: AppSettings,
) -> None:
    """Delete a shift nobody signed up for; one with signups is cancelled (kept, with
    `cancelled_at`) and everyone on it is emailed."""
    await shifts.delete_shift(session, ctx, event_id, shift_id, settings=settings)
