"""The waiting list of a shift: ordering, positions and promotion.

Waitlisted signups are ordered by `waitlist_order`, handed out from the shift's
`waitlist_seq` under the shift's row lock; a position is the rank among the shift's
waitlisted signups (1 = next to be promoted). Promotion runs in the transaction of whatever
freed the place (a cancellation, a removal, a larger capacity) and under the same lock, so
two cancellations racing each promote a different person.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.events import notices
from townsquare.events.enums import SignupStatus
from townsquare.events.models import Event, Shift, Signup


async def positions(session: AsyncSession, shift_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The position of every waitlisted signup of these shifts, by signup id."""
    if not shift_ids:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=Signup.shift_id, order_by=(Signup.waitlist_order, Signup.id))
        .label("position")
    )
    rows = await session.execute(
        select(Signup.id, rank).where(
            Signup.shift_id.in_(shift_ids), Signup.status == SignupStatus.waitlisted
        )
    )
    return {signup_id: int(position) for signup_id, position in rows.all()}


async def position_of(session: AsyncSession, signup: Signup) -> int | None:
    if signup.status != SignupStatus.waitlisted or signup.waitlist_order is None:
        return None
    ahead = await session.scalar(
        select(func.count()).where(
            Signup.shift_id == signup.shift_id,
            Signup.status == SignupStatus.waitlisted,
            Signup.waitlist_order < signup.waitlist_order,
        )
    )
    return int(ahead or 0) + 1


async def counts(
    session: AsyncSession, shift_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[SignupStatus, int]]:
    """How many signups of each status every shift has."""
    if not shift_ids:
        return {}
    rows = await session.execute(
        select(Signup.shift_id, Signup.status, func.count())
        .where(Signup.shift_id.in_(shift_ids))
        .group_by(Signup.shift_id, Signup.status)
    )
    found: dict[uuid.UUID, dict[SignupStatus, int]] = {}
    for shift_id, status, count in rows.all():
        found.setdefault(shift_id, {})[SignupStatus(status)] = int(count)
    return found


def join(shift: Shift, signup: Signup) -> None:
    """Put `signup` at the end of the shift's waiting list (caller holds the shift's lock)."""
    shift.waitlist_seq += 1
    signup.status = SignupStatus.waitlisted
    signup.waitlist_order = shift.waitlist_seq


async def promote(
    session: AsyncSession,
    shift: Shift,
    event: Event,
    *,
    now: datetime,
    settings: Settings,
) -> list[Signup]:
    """Fill the shift's free places from the head of its waiting list and email everyone
    promoted. The caller holds the shift's row lock. A cancelled or started shift promotes
    nobody."""
    free = shift.capacity - shift.confirmed_count
    if free <= 0 or shift.cancelled_at is not None or now >= shift.starts_at:
        return []
    rows = await session.execute(
        select(Signup, User)
        .join(User, User.id == Signup.user_id)
        .where(Signup.shift_id == shift.id, Signup.status == SignupStatus.waitlisted)
        .order_by(Signup.waitlist_order, Signup.id)
        .limit(free)
        .execution_options(populate_existing=True)
    )
    promotions = list(rows.all())
    for signup, _user in promotions:
        signup.status = SignupStatus.confirmed
        signup.confirmed_at = now
        signup.promoted_at = now
    shift.confirmed_count += len(promotions)
    await session.flush()
    await notices.promoted(session, promotions, shift, event, settings)
    return [signup for signup, _user in promotions]
