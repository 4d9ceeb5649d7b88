"""Public reads of events: published events not ended yet, by cursor, and one published
event with its shifts' capacity and free places. Never a volunteer's name or email: these
reads touch no signup row at all (free places come from the shift's confirmed count)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.events.enums import EventStatus
from townsquare.events.models import Event, Shift
from townsquare.kit import clock
from townsquare.kit.pagination import InvalidCursor, decode_cursor, encode_cursor
from townsquare.kit.slugs import is_valid_slug
from townsquare.orgs.deps import module_enabled
from townsquare.orgs.enums import Module
from townsquare.orgs.models import Organization

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True)
class PublicPage:
    organization: Organization
    events: list[Event]
    next_cursor: str | None


async def organization(session: AsyncSession, slug: str) -> Organization | None:
    """The org by slug when its `events` module is on."""
    if not is_valid_slug(slug):
        return None
    found = await session.scalar(select(Organization).where(Organization.slug == slug))
    if found is None or not await module_enabled(session, found.id, Module.events):
        return None
    return found


def _after(cursor: str) -> tuple[datetime, uuid.UUID]:
    values = decode_cursor(cursor)
    try:
        return datetime.fromisoformat(str(values["s"])), uuid.UUID(str(values["i"]))
    except (KeyError, ValueError) as exc:
        raise InvalidCursor() from exc


async def list_events(
    session: AsyncSession, slug: str, *, limit: int, cursor: str | None
) -> PublicPage | None:
    """Published events that have not ended, soonest first; None: no such org."""
    org = await organization(session, slug)
    if org is None:
        return None
    statement = (
        select(Event)
        .where(
            Event.organization_id == org.id,
            Event.status == EventStatus.published,
            Event.ends_at > clock.now(),
        )
        .order_by(Event.starts_at, Event.id)
        .limit(limit + 1)
    )
    if cursor is not None:
        starts_at, event_id = _after(cursor)
        if starts_at.tzinfo is None:
            raise InvalidCursor()
        statement = statement.where(
            or_(
                Event.starts_at > starts_at,
                and_(Event.starts_at == starts_at, Event.id > event_id),
            )
        )
    found = list((await session.scalars(statement)).all())
    page, more = found[:limit], len(found) > limit
    next_cursor = (
        encode_cursor({"s": page[-1].starts_at.isoformat(), "i": str(page[-1].id)})
        if more
        else None
    )
    return PublicPage(org, page, next_cursor)


async def get_event(
    session: AsyncSession, slug: str, event_id: uuid.UUID
) -> tuple[Organization, Event, list[Shift]] | None:
    """A published event and its shifts that are not cancelled; None: not found."""
    org = await organization(session, slug)
    if org is None:
        return None
    event = await session.scalar(
        select(Event).where(
            Event.id == event_id,
            Event.organization_id == org.id,
            Event.status == EventStatus.published,
        )
    )
    if event is None:
        return None
    shifts = await session.scalars(
        select(Shift)
        .where(Shift.event_id == event.id, Shift.cancelled_at.is_(None))
        .order_by(Shift.starts_at, Shift.id)
    )
    return org, event, list(shifts.all())
