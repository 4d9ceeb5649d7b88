"""Signing up for a shift, cancelling a signup, marking a no-show.

Capacity is exact: the signup takes the shift's row lock (`shifts.lock_shift`) before it
counts, so concurrent signups queue on that row and each sees the places the previous ones
took (a check before the lock and an insert after it would let two take the last place).
The person's own row is locked first (`FOR NO KEY UPDATE`, which does not block rows that
merely reference it), so two signups of one person for overlapping shifts cannot both win.
The partial unique index `uq_signups_active` backs up "one active signup per person".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db import flush_or_conflict
from townsquare.events import events, notices, shifts, waitlist
from townsquare.events.enums import ACTIVE_SIGNUP_STATUSES, EventStatus, SignupStatus
from townsquare.events.errors import (
    AlreadySignedUp,
    CancelDeadlinePassed,
    OverlapsOwnShift,
    ShiftFull,
    ShiftNotFound,
    ShiftNotStarted,
    ShiftStarted,
    SignupBlocked,
    SignupClosed,
    SignupNotActive,
    SignupNotFound,
)
from townsquare.events.models import Event, Shift, Signup
from townsquare.kit import clock
from townsquare.orgs import audit
from townsquare.orgs.context import OrgContext


@dataclass(frozen=True)
class SignupView:
    signup: Signup
    user: User
    position: int | None


async def no_show_count(
    session: AsyncSession, organization_id: uuid.UUID, user_id: uuid.UUID
) -> int:
    count = await session.scalar(
        select(func.count()).where(
            Signup.organization_id == organization_id,
            Signup.user_id == user_id,
            Signup.status == SignupStatus.no_show,
        )
    )
    return int(count or 0)


async def _overlaps(session: AsyncSession, user_id: uuid.UUID, shift: Shift) -> bool:
    """Whether the person holds an active signup, in any organization, on another shift
    (not cancelled) whose time overlaps this one's."""
    found = await session.scalar(
        select(Signup.id)
        .join(Shift, Shift.id == Signup.shift_id)
        .where(
            Signup.user_id == user_id,
            Signup.status.in_(ACTIVE_SIGNUP_STATUSES),
            Shift.id != shift.id,
            Shift.cancelled_at.is_(None),
            Shift.starts_at < shift.ends_at,
            Shift.ends_at > shift.starts_at,
        )
        .limit(1)
    )
    return found is not None


async def sign_up(
    session: AsyncSession,
    ctx: OrgContext,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    *,
    waitlist_if_full: bool,
    settings: Settings,
) -> SignupView:
    """Sign the caller up: confirmed while places are free, else on the waiting list when
    asked (201 with a position), else 409 `shift_full`."""
    event = await events.get_event(session, ctx, event_id)
    await session.execute(
        select(User.id).where(User.id == ctx.user.id).with_for_update(key_share=True)
    )
    shift = await shifts.lock_shift(session, shift_id)
    if shift is None or shift.event_id != event.id:
        raise ShiftNotFound()
    now = clock.now()
    if event.status != EventStatus.published or shift.cancelled_at is not None:
        raise SignupClosed()
    if now >= shift.starts_at:
        raise ShiftStarted()
    limit = settings.EVENTS_NO_SHOW_LIMIT
    if limit and await no_show_count(session, ctx.org.id, ctx.user.id) >= limit:
        raise SignupBlocked()
    already = await session.scalar(
        select(Signup.id).where(
            Signup.shift_id == shift.id,
            Signup.user_id == ctx.user.id,
            Signup.status.in_(ACTIVE_SIGNUP_STATUSES),
        )
    )
    if already is not None:
        raise AlreadySignedUp()
    if await _overlaps(session, ctx.user.id, shift):
        raise OverlapsOwnShift()
    signup = Signup(
        organization_id=ctx.org.id,
        event_id=event.id,
        shift_id=shift.id,
        user_id=ctx.user.id,
    )
    if shift.confirmed_count < shift.capacity:
        signup.status = SignupStatus.confirmed
        signup.confirmed_at = now
        shift.confirmed_count += 1
    elif waitlist_if_full:
        waitlist.join(shift, signup)
    else:
        raise ShiftFull(extra={"capacity": shift.capacity})
    await flush_or_conflict(session, {"uq_signups_active": AlreadySignedUp}, add=[signup])
    return SignupView(signup, ctx.user, await waitlist.position_of(session, signup))


async def _locked_signup(
    session: AsyncSession,
    ctx: OrgContext,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    signup_id: uuid.UUID,
) -> tuple[Event, Shift, Signup]:
    """The signup of this shift and event under the shift's lock, read afresh. Someone
    else's signup is not found for a member who does not manage events."""
    event, shift = await shifts.get_shift(session, ctx, event_id, shift_id, for_update=True)
    signup = await session.scalar(
        select(Signup)
        .where(Signup.id == signup_id, Signup.shift_id == shift.id)
        .execution_options(populate_existing=True)
    )
    if signup is None or (signup.user_id != ctx.user.id and not events.manages(ctx)):
        raise SignupNotFound()
    return event, shift, signup


async def cancel_signup(
    session: AsyncSession,
    ctx: OrgContext,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    signup_id: uuid.UUID,
    *,
    settings: Settings,
) -> None:
    """Cancel a signup; a freed place goes to the head of the waiting list in the same
    transaction. A volunteer cancels a confirmed place only until the deadline before the
    start (leaving a waiting list is always fine); managers cancel any signup, any time."""
    event, shift, signup = await _locked_signup(session, ctx, event_id, shift_id, signup_id)
    if signup.status not in ACTIVE_SIGNUP_STATUSES:
        raise SignupNotActive()
    now = clock.now()
    own = signup.user_id == ctx.user.id
    deadline = shift.starts_at - timedelta(hours=settings.EVENTS_CANCEL_DEADLINE_HOURS)
    volunteer_cancels = own and not events.manages(ctx)
    if volunteer_cancels and signup.status == SignupStatus.confirmed and now > deadline:
        raise CancelDeadlinePassed(extra={"deadline": deadline.isoformat()})
    was_confirmed = signup.status == SignupStatus.confirmed
    signup.status = SignupStatus.cancelled
    signup.cancelled_at = now
    signup.cancelled_by_id = ctx.user.id
    if was_confirmed:
        shift.confirmed_count -= 1
    await session.flush()
    if not own:
        volunteer = await session.get(User, signup.user_id)
        assert volunteer is not None
        await notices.signup_removed(session, volunteer, shift, event, settings)
        await audit.record(
            session,
            ctx,
            "signup.removed",
            target=("signup", signup.id),
            data={"user_id": str(signup.user_id), "shift_id": str(shift.id)},
        )
    if was_confirmed:
        await waitlist.promote(session, shift, event, now=now, settings=settings)


async def mark_no_show(
    session: AsyncSession,
    ctx: OrgContext,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    signup_id: uuid.UUID,
) -> SignupView:
    """A confirmed volunteer did not come (once the shift has started)."""
    _event, shift, signup = await _locked_signup(session, ctx, event_id, shift_id, signup_id)
    if signup.status != SignupStatus.confirmed:
        raise SignupNotActive("Only a confirmed signup can be marked as a no-show.")
    now = clock.now()
    if now < shift.starts_at:
        raise ShiftNotStarted()
    signup.status = SignupStatus.no_show
    signup.no_show_at = now
    shift.confirmed_count -= 1
    await session.flush()
    await audit.record(
        session,
        ctx,
        "signup.no_show",
        target=("signup", signup.id),
        data={"user_id": str(signup.user_id), "shift_id": str(shift.id)},
    )
    user = await session.get(User, signup.user_id)
    assert user is not None
    return SignupView(signup, user, None)
