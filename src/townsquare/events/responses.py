"""Turning the services' views into response bodies."""

from __future__ import annotations

from townsquare.events import schemas
from townsquare.events.events import EventView
from townsquare.events.roster import RosterRow
from townsquare.events.shifts import ShiftView
from townsquare.events.signups import SignupView


def event_out(view: EventView) -> schemas.Event:
    e = view.event
    return schemas.Event(
        id=e.id,
        title=e.title,
        description=e.description,
        location=e.location,
        starts_at=e.starts_at,
        ends_at=e.ends_at,
        timezone=e.timezone,
        status=e.status,
        published_at=e.published_at,
        cancelled_at=e.cancelled_at,
        shift_count=view.shift_count,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )


def shift_out(view: ShiftView) -> schemas.Shift:
    s = view.shift
    return schemas.Shift(
        id=s.id,
        event_id=s.event_id,
        title=s.title,
        description=s.description,
        location=s.location,
        starts_at=s.starts_at,
        ends_at=s.ends_at,
        capacity=s.capacity,
        confirmed_count=s.confirmed_count,
        waitlist_count=view.waitlist_count,
        no_show_count=view.no_show_count,
        free_places=0 if s.cancelled_at is not None else s.free_places,
        sequence=s.sequence,
        cancelled_at=s.cancelled_at,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def _signup_fields(view: SignupView | RosterRow) -> dict[str, object]:
    s = view.signup
    return {
        "id": s.id,
        "event_id": s.event_id,
        "shift_id": s.shift_id,
        "user": schemas.UserRef(id=view.user.id, display_name=view.user.display_name),
        "status": s.status,
        "position": view.position,
        "created_at": s.created_at,
        "confirmed_at": s.confirmed_at,
        "cancelled_at": s.cancelled_at,
    }


def signup_out(view: SignupView) -> schemas.Signup:
    return schemas.Signup(**_signup_fields(view))


def roster_out(row: RosterRow) -> schemas.RosterEntry:
    return schemas.RosterEntry(**_signup_fields(row), no_show_count=row.no_show_count)
