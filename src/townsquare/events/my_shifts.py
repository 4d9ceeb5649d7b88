"""A person's own shifts across every organization: `GET /me/shifts` and the calendar feed.

Upcoming: the shifts they hold or wait for (confirmed or waitlisted) that have not ended,
cancelled shifts included (so the person sees the cancellation), soonest first. Past: the
shifts that ended which they were confirmed for (a no-show included), latest first. Both
page by keyset on the shift's start and the signup's id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from townsquare.events.calendar_feed import FeedEntry, signup_uid
from townsquare.events.enums import SignupStatus
from townsquare.events.models import Event, Shift, Signup
from townsquare.kit.pagination import InvalidCursor, decode_cursor, encode_cursor
from townsquare.orgs.models import Organization

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
FEED_HISTORY = timedelta(days=365)
"""How far back the calendar feed keeps shifts that took place."""


class When(StrEnum):
    upcoming = "upcoming"
    past = "past"


UPCOMING_STATUSES = (SignupStatus.confirmed, SignupStatus.waitlisted)
PAST_STATUSES = (SignupStatus.confirmed, SignupStatus.no_show)


@dataclass(frozen=True)
class MyShiftRow:
    signup: Signup
    shift: Shift
    event: Event
    organization: Organization
    position: int | None


def _rows() -> Select[Signup, Shift, Event, Organization]:
    return (
        select(Signup, Shift, Event, Organization)
        .join(Shift, Shift.id == Signup.shift_id)
        .join(Event, Event.id == Signup.event_id)
        .join(Organization, Organization.id == Signup.organization_id)
    )


async def list_for_user(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    when: When,
    now: datetime,
    cursor: str | None,
    limit: int,
) -> tuple[list[MyShiftRow], str | None]:
    """One page of the person's shifts and the cursor of the next (None: last page)."""
    query = _rows().where(Signup.user_id == user_id)
    if when == When.upcoming:
        query = query.where(Signup.status.in_(UPCOMING_STATUSES), Shift.ends_at > now)
        order = (Shift.starts_at.asc(), Signup.id.asc())
    else:
        query = query.where(Signup.status.in_(PAST_STATUSES), Shift.ends_at <= now)
        order = (Shift.starts_at.desc(), Signup.id.desc())
    if cursor is not None:
        starts_at, signup_id = _decode(cursor, when)
        if when == When.upcoming:
            after = or_(
                Shift.starts_at > starts_at,
                and_(Shift.starts_at == starts_at, Signup.id > signup_id),
            )
        else:
            after = or_(
                Shift.starts_at < starts_at,
                and_(Shift.starts_at == starts_at, Signup.id < signup_id),
            )
        query = query.where(after)
    found = (await session.execute(query.order_by(*order).limit(limit + 1))).all()
    page = found[:limit]
    positions = await _positions(session, [row[0] for row in page])
    items = [
        MyShiftRow(
            signup=signup,
            shift=shift,
            event=event,
            organization=org,
            position=positions.get(signup.id),
        )
        for signup, shift, event, org in page
    ]
    next_cursor = None
    if len(found) > limit:
        last = items[-1]
        next_cursor = encode_cursor(
            {"w": when.value, "s": last.shift.starts_at.isoformat(), "i": str(last.signup.id)}
        )
    return items, next_cursor


def _decode(cursor: str, when: When) -> tuple[datetime, uuid.UUID]:
    values: dict[str, Any] = decode_cursor(cursor)
    if values.get("w") != when.value:
        raise InvalidCursor()
    try:
        starts_at = datetime.fromisoformat(str(values["s"]))
        signup_id = uuid.UUID(str(values["i"]))
    except (KeyError, ValueError) as exc:
        raise InvalidCursor() from exc
    if starts_at.tzinfo is None:
        raise InvalidCursor()
    return starts_at, signup_id


async def _positions(session: AsyncSession, signups: list[Signup]) -> dict[uuid.UUID, int]:
    """Each waitlisted signup's place: its rank among its shift's waitlisted signups."""
    waiting = [s.id for s in signups if s.status == SignupStatus.waitlisted]
    if not waiting:
        return {}
    ahead = aliased(Signup)
    rank = (
        select(func.count())
        .where(
            ahead.shift_id == Signup.shift_id,
            ahead.status == SignupStatus.waitlisted,
            ahead.waitlist_order <= Signup.waitlist_order,
        )
        .correlate(Signup)
        .scalar_subquery()
    )
    rows = await session.execute(select(Signup.id, rank).where(Signup.id.in_(waiting)))
    return {signup_id: int(position) for signup_id, position in rows.all()}


async def feed_rows(
    session: AsyncSession, user_id: uuid.UUID, *, now: datetime, kept_cancelled: timedelta
) -> list[MyShiftRow]:
    """What the person's calendar shows: shifts they are confirmed for (or were, a no-show)
    from `FEED_HISTORY` ago on, and the ones cancelled (the shift, the event or their
    signup) within `kept_cancelled`, by start. Waitlisted signups are not in it: the
    shift is not theirs yet."""
    recently = now - kept_cancelled
    query = (
        _rows()
        .where(
            Signup.user_id == user_id,
            Shift.ends_at > now - FEED_HISTORY,
            or_(
                and_(
                    Signup.status.in_(PAST_STATUSES),
                    or_(Shift.cancelled_at.is_(None), Shift.cancelled_at >= recently),
                ),
                and_(
                    Signup.status == SignupStatus.cancelled,
                    Signup.cancelled_at.is_not(None),
                    Signup.cancelled_at >= recently,
                    # A cancelled signup that never held a place never was in the feed.
                    Signup.confirmed_at.is_not(None),
                ),
            ),
        )
        .order_by(Shift.starts_at, Signup.id)
    )
    rows = (await session.execute(query)).all()
    return [
        MyShiftRow(signup=signup, shift=shift, event=event, organization=org, position=None)
        for signup, shift, event, org in rows
    ]


def feed_entry(row: MyShiftRow, *, domain: str) -> FeedEntry:
    """A signup as its calendar entry. The shift's `sequence` grows with every change a
    calendar shows; a cancelled signup adds one more, so that its STATUS:CANCELLED
    outranks the confirmed copy the calendar holds."""
    signup, shift, event = row.signup, row.shift, row.event
    signup_cancelled = signup.status == SignupStatus.cancelled
    summary = f"{shift.title} — {event.title}"
    description = f"Volunteer shift for {row.organization.name}."
    if shift.description:
        description = f"{description}\n\n{shift.description}"
    return FeedEntry(
        uid=signup_uid(signup.id, domain),
        sequence=shift.sequence + (1 if signup_cancelled else 0),
        summary=summary,
        starts_at=shift.starts_at,
        ends_at=shift.ends_at,
        timezone=event.timezone,
        location=shift.location or event.location or "",
        description=description,
        cancelled=signup_cancelled or shift.cancelled_at is not None,
        modified_at=max(signup.updated_at, shift.updated_at, event.updated_at),
    )
