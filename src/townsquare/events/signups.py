"""Signing up for a shift, cancelling a signup, marking a no-show.

Capacity is exact: a signup takes its place with one conditional `UPDATE` of the shift's
row (`confirmed_count < capacity`), which takes the row lock and is re-checked on the
locked row, so concurrent signups each see the places the previous ones took (a count read
before the lock and an insert after it would let two take the last place). Everything else
under that lock (the waiting list, cancellations, promotions) reads the row with
`shifts.lock_shift`. The person's own row is locked first (`FOR NO KEY UPDATE`, which does
not block rows that merely reference it), so two signups of one person for overlapping
shifts cannot both win, and the per-person checks run before the shift's lock is taken.
The partial unique index `uq_signups_active` backs up "one active signup per person".
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db import is_unique_violation, violated_constraint
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


# Built once: every signup runs them (building a statement costs more than its parameters).
_LOCK_PERSON = (
    select(User.id).where(User.id == bindparam("user_id")).with_for_update(key_share=True)
)

# The per-person checks in one round trip: no-shows in the organization, an active signup
# on this shift, an active signup on another (not cancelled) shift, in any organization,
# whose time overlaps this one's.
_PERSON_CHECKS = select(
    select(func.count())
    .where(
        Signup.organization_id == bindparam("org_id"),
        Signup.user_id == bindparam("user_id"),
        Signup.status == SignupStatus.no_show,
    )
    .scalar_subquery()
    .label("no_shows"),
    exists()
    .where(
        Signup.shift_id == bindparam("shift_id"),
        Signup.user_id == bindparam("user_id"),
        Signup.status.in_(ACTIVE_SIGNUP_STATUSES),
    )
    .label("signed_up"),
    exists()
    .where(
        Signup.user_id == bindparam("user_id"),
        Signup.status.in_(ACTIVE_SIGNUP_STATUSES),
        Shift.id == Signup.shift_id,
        Shift.id != bindparam("shift_id"),
        Shift.cancelled_at.is_(None),
        Shift.starts_at < bindparam("ends_at"),
        Shift.ends_at > bindparam("starts_at"),
    )
    .label("overlaps"),
)

_shifts_table = cast(Table, Shift.__table__)
_shifts = _shifts_table.c
_signups_table = cast(Table, Signup.__table__)
_signups = _signups_table.c

# Takes a place if one is free, in one statement that takes the shift's row lock itself:
# PostgreSQL re-checks the condition on the row once the lock is its own, so two signups
# cannot both take the last place.
_TAKE_PLACE = (
    update(_shifts_table)
    .where(
        _shifts.id == bindparam("shift_id"),
        _shifts.confirmed_count < _shifts.capacity,
        _shifts.cancelled_at.is_(None),
        _shifts.starts_at > bindparam("now"),
    )
    .values(confirmed_count=_shifts.confirmed_count + 1, updated_at=bindparam("now"))
    .returning(_shifts.id)
)

_CONFIRMED_COLUMNS = (
    "id",
    "organization_id",
    "event_id",
    "user_id",
    "status",
    "confirmed_at",
    "created_at",
    "updated_at",
)
_INSERT_CONFIRMED = insert(_signups_table).values(
    {
        name: bindparam(f"new_{name}", type_=_signups[name].type)
        for name in ("shift_id", *_CONFIRMED_COLUMNS)
    }
)
# PostgreSQL: the place and the signup in one statement (a signup row only if a place was
# taken), so the shift's lock is held for that statement and the commit. SQLite cannot
# put an UPDATE in a WITH clause; its write transactions run one at a time anyway.
_taken = _TAKE_PLACE.cte("taken")
_TAKE_PLACE_AND_INSERT = (
    insert(_signups_table)
    .from_select(
        ["shift_id", *_CONFIRMED_COLUMNS],
        select(
            _taken.c.id,
            *(bindparam(f"new_{name}", type_=_signups[name].type) for name in _CONFIRMED_COLUMNS),
        ),
    )
    .returning(_signups.id)
)


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
    asked (201 with a position), else 409 `shift_full`.

    The shift's row lock is held as briefly as possible, since every signup into the shift
    queues on it: the per-person checks run before it, under the person's lock; then one
    conditional `UPDATE` takes a place (and the lock) and the signup is inserted. Only when
    no place was taken (full, or cancelled or started meanwhile) is the shift read under
    its lock to tell why, or to join the waiting list."""
    event = await events.get_event(session, ctx, event_id)
    await session.execute(_LOCK_PERSON, {"user_id": ctx.user.id})
    shift = await session.get(Shift, shift_id)
    if shift is None or shift.event_id != event.id:
        raise ShiftNotFound()
    now = clock.now()
    _check_open(event, shift, now)
    checks = (
        await session.execute(
            _PERSON_CHECKS,
            {
                "org_id": ctx.org.id,
                "user_id": ctx.user.id,
                "shift_id": shift.id,
                "starts_at": shift.starts_at,
                "ends_at": shift.ends_at,
            },
        )
    ).one()
    limit = settings.EVENTS_NO_SHOW_LIMIT
    if limit and checks.no_shows >= limit:
        raise SignupBlocked()
    if checks.signed_up:
        raise AlreadySignedUp()
    if checks.overlaps:
        raise OverlapsOwnShift()
    signup = Signup(
        id=uuid.uuid4(),
        organization_id=ctx.org.id,
        event_id=event.id,
        shift_id=shift.id,
        user_id=ctx.user.id,
        created_at=now,
        updated_at=now,
    )
    if shift.confirmed_count < shift.capacity and await _take_place(session, signup, now):
        return SignupView(signup, ctx.user, None)
    await _confirm_or_wait(session, event, shift.id, signup, now, waitlist_if_full)
    # No savepoint: under the person's row lock, taken before the checks above, no other
    # transaction can insert an active signup of this person (every signup takes that lock
    # first; SQLite runs one write transaction at a time), so `uq_signups_active` cannot
    # fire here. Should it ever, the whole transaction fails with 409 all the same.
    session.add(signup)
    await _flush_signup(session)
    return SignupView(signup, ctx.user, await waitlist.position_of(session, signup))


async def _take_place(session: AsyncSession, signup: Signup, now: datetime) -> bool:
    """Take a free place and insert `signup` confirmed, or do nothing (False) when no
    place was free. The signup row is written directly: it is not in the session."""
    values = {f"new_{name}": getattr(signup, name) for name in _CONFIRMED_COLUMNS}
    values.update(new_status=SignupStatus.confirmed, new_confirmed_at=now)
    async with _conflict_is_already_signed_up():
        if session.get_bind().dialect.name == "postgresql":
            inserted = await session.execute(
                _TAKE_PLACE_AND_INSERT, {**values, "shift_id": signup.shift_id, "now": now}
            )
            taken = inserted.first() is not None
        else:
            place = await session.execute(_TAKE_PLACE, {"shift_id": signup.shift_id, "now": now})
            taken = place.first() is not None
            if taken:
                await session.execute(
                    _INSERT_CONFIRMED, {**values, "new_shift_id": signup.shift_id}
                )
    if taken:
        signup.status = SignupStatus.confirmed
        signup.confirmed_at = now
    return taken


async def _flush_signup(session: AsyncSession) -> None:
    async with _conflict_is_already_signed_up():
        await session.flush()


@asynccontextmanager
async def _conflict_is_already_signed_up() -> AsyncIterator[None]:
    try:
        yield
    except IntegrityError as exc:
        if is_unique_violation(exc) and violated_constraint(exc) == "uq_signups_active":
            raise AlreadySignedUp() from exc
        raise


def _check_open(event: Event, shift: Shift, now: datetime) -> None:
    if event.status != EventStatus.published or shift.cancelled_at is not None:
        raise SignupClosed()
    if now >= shift.starts_at:
        raise ShiftStarted()


async def _confirm_or_wait(
    session: AsyncSession,
    event: Event,
    shift_id: uuid.UUID,
    signup: Signup,
    now: datetime,
    waitlist_if_full: bool,
) -> None:
    """No place was taken: read the shift afresh under its lock and confirm the signup if
    a place was freed meanwhile, else put it on the waiting list when asked, else refuse
    with why (cancelled or started meanwhile, or full)."""
    shift = await shifts.lock_shift(session, shift_id)
    if shift is None:  # deleted meanwhile (it had no signups)
        raise ShiftNotFound()
    _check_open(event, shift, now)
    if shift.confirmed_count < shift.capacity:
        signup.status = SignupStatus.confirmed
        signup.confirmed_at = now
        shift.confirmed_count += 1
    elif waitlist_if_full:
        waitlist.join(shift, signup)
    else:
        raise ShiftFull(extra={"capacity": shift.capacity})


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
