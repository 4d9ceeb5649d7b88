"""The public site's reads of events: no authentication, published events only, never a
volunteer's name. An org that does not exist or has `events` off answers 404."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from townsquare.db import DbSession, TransactionalRoute
from townsquare.errors import NotFound
from townsquare.events import public, schemas
from townsquare.events.models import Event, Shift
from townsquare.orgs.models import Organization

router = APIRouter(
    prefix="/public/orgs/{org}/events", tags=["public"], route_class=TransactionalRoute
)

OrgSlug = Annotated[
    str, Path(max_length=64, pattern=r"^[^\x00-\x1f]+$", description="The organization's slug.")
]


class PublicEventNotFound(NotFound):
    code = "event_not_found"
    detail = "No such published event or organization."


def _summary(org: Organization, event: Event) -> dict[str, object]:
    return {
        "id": event.id,
        "title": event.title,
        "location": event.location,
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "timezone": event.timezone,
        "organization_name": org.name,
    }


def _shift(shift: Shift) -> schemas.PublicShift:
    return schemas.PublicShift(
        id=shift.id,
        title=shift.title,
        description=shift.description,
        location=shift.location,
        starts_at=shift.starts_at,
        ends_at=shift.ends_at,
        capacity=shift.capacity,
        free_places=shift.free_places,
    )


@router.get("", response_model=schemas.PublicEventPage)
async def list_public_events(
    org: OrgSlug,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=public.MAX_LIMIT)] = public.DEFAULT_LIMIT,
) -> schemas.PublicEventPage:
    """Published events that have not ended, soonest first, by cursor (`next_cursor`)."""
    page = await public.list_events(session, org, limit=limit, cursor=cursor)
    if page is None:
        raise PublicEventNotFound("No such organization.")
    return schemas.PublicEventPage(
        items=[schemas.PublicEventSummary(**_summary(page.organization, e)) for e in page.events],
        next_cursor=page.next_cursor,
    )


@router.get("/{event_id}", response_model=schemas.PublicEvent)
async def get_public_event(
    org: OrgSlug, event_id: uuid.UUID, session: DbSession
) -> schemas.PublicEvent:
    """One published event with its shifts' capacity and free places."""
    found = await public.get_event(session, org, event_id)
    if found is None:
        raise PublicEventNotFound()
    organization, event, shifts = found
    return schemas.PublicEvent(
        **_summary(organization, event),
        description=event.description,
        shifts=[_shift(s) for s in shifts],
    )
