"""Rosters for managers: a shift's signups with names and no-show counts, and the CSV of
a whole event."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.events import events, shifts, waitlist
from townsquare.events.enums import SignupStatus
from townsquare.events.models import Event, Shift, Signup
from townsquare.kit.pagination import PageParams, paginate
from townsquare.orgs.context import OrgContext

ROSTER_STATUSES = (SignupStatus.confirmed, SignupStatus.waitlisted, SignupStatus.no_show)
"""What a roster lists: who is on the shift, who waits, and who did not come."""

CSV_COLUMNS = (
    "shift",
    "shift_starts_at",
    "shift_ends_at",
    "name",
    "email",
    "status",
    "position",
    "no_shows",
    "signed_up_at",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RosterRow:
    signup: Signup
    user: User
    position: int | None
    no_show_count: int


def _status_order() -> object:
    return case(
        (Signup.status == SignupStatus.confirmed, 0),
        (Signup.status == SignupStatus.waitlisted, 1),
        else_=2,
    )


async def _no_shows(
    session: AsyncSession, organization_id: uuid.UUID, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    if not user_ids:
        return {}
    rows = await session.execute(
        select(Signup.user_id, func.count())
        .where(
            Signup.organization_id == organization_id,
            Signup.user_id.in_(user_ids),
            Signup.status == SignupStatus.no_show,
        )
        .group_by(Signup.user_id)
    )
    return {user_id: int(count) for user_id, count in rows.all()}


async def shift_roster(
    session: AsyncSession,
    ctx: OrgContext,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    paging: PageParams,
    *,
    status: SignupStatus | None = None,
) -> tuple[list[RosterRow], int]:
    """Confirmed first (by signup time), then the waiting list in order, then no-shows."""
    _event, shift = await shifts.get_shift(session, ctx, event_id, shift_id)
    statuses = (status,) if status is not None else ROSTER_STATUSES
    statement = (
        select(Signup, User)
        .join(User, User.id == Signup.user_id)
        .where(Signup.shift_id == shift.id, Signup.status.in_(statuses))
        .order_by(_status_order(), Signup.waitlist_order, Signup.created_at, Signup.id)  # type: ignore[arg-type]
    )
    rows, total = await paginate(session, statement, paging)
    return await _rows(session, ctx.org.id, [shift.id], rows), total


async def _rows(
    session: AsyncSession,
    organization_id: uuid.UUID,
    shift_ids: list[uuid.UUID],
    rows: list[tuple[Signup, User]],
) -> list[RosterRow]:
    places = await waitlist.positions(session, shift_ids)
    no_shows = await _no_shows(session, organization_id, list({u.id for _, u in rows}))
    return [
        RosterRow(signup, user, places.get(signup.id), no_shows.get(user.id, 0))
        for signup, user in rows
    ]


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: never a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


async def event_roster_csv(session: AsyncSession, ctx: OrgContext, event_id: uuid.UUID) -> str:
    """Every shift's roster of the event, shift by shift, as CSV (a header row first)."""
    event: Event = await events.get_event(session, ctx, event_id)
    result = await session.execute(
        select(Signup, User, Shift)
        .join(User, User.id == Signup.user_id)
        .join(Shift, Shift.id == Signup.shift_id)
        .where(Signup.event_id == event.id, Signup.status.in_(ROSTER_STATUSES))
        .order_by(
            Shift.starts_at,
            Shift.id,
            _status_order(),  # type: ignore[arg-type]
            Signup.waitlist_order,
            Signup.created_at,
            Signup.id,
        )
    )
    found = list(result.all())
    shift_ids = list({shift.id for _, _, shift in found})
    rows = await _rows(session, ctx.org.id, shift_ids, [(s, u) for s, u, _ in found])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row, (_, _, shift) in zip(rows, found, strict=True):
        writer.writerow(
            [
                _cell(shift.title),
                shift.starts_at.isoformat(),
                shift.ends_at.isoformat(),
                _cell(row.user.display_name),
                _cell(row.user.email),
                row.signup.status.value,
                "" if row.position is None else row.position,
                row.no_show_count,
                row.signup.created_at.isoformat(),
            ]
        )
    return out.getvalue()
