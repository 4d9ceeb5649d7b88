"""Signups: members sign up and cancel their own; managers (`events:manage`) read rosters,
export an event's roster as CSV, cancel anyone's signup and mark no-shows."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute, commit
from townsquare.events import roster, schemas, signups
from townsquare.events.deps import EventsManager, EventsMember
from townsquare.events.enums import SignupStatus
from townsquare.events.responses import roster_out, signup_out
from townsquare.kit.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/orgs/{org}/events", tags=["events"], route_class=TransactionalRoute)

Paging = Annotated[PageParams, Depends(page_params)]
SIGNUPS = "/{event_id}/shifts/{shift_id}/signups"
SIGNUP = f"{SIGNUPS}/{{signup_id}}"

_SIGNUP_CONFLICTS = (
    "`shift_full`, `overlaps_own_shift` (another of your shifts, in any organization, at "
    "that time), `already_signed_up`, `signup_closed` (event not published, or shift "
    "cancelled), `shift_started`, `signup_blocked` (no-show limit reached)"
)


@router.post(
    SIGNUPS,
    response_model=schemas.Signup,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": _SIGNUP_CONFLICTS}},
)
async def sign_up(
    ctx: EventsMember,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    session: DbSession,
    settings: AppSettings,
    body: schemas.SignupCreate | None = None,
) -> schemas.Signup:
    """Sign up: `confirmed` while places are free; when full, `waitlisted` with a
    `position` if `"waitlist": true`, else 409 `shift_full`."""
    view = await signups.sign_up(
        session,
        ctx,
        event_id,
        shift_id,
        waitlist_if_full=body.waitlist if body is not None else False,
        settings=settings,
    )
    # Committed before the answer is built (the route's own commit then has nothing to
    # do): the shift's row lock, taken with the place, lasts until the commit, and every
    # signup into the shift waits for it.
    await commit(session)
    return signup_out(view)


@router.get(SIGNUPS, response_model=Page[schemas.RosterEntry])
async def shift_roster(
    ctx: EventsManager,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    session: DbSession,
    paging: Paging,
    status: SignupStatus | None = None,
) -> Page[schemas.RosterEntry]:
    """The shift's roster: confirmed, then the waiting list in order, then no-shows (or one
    `status`), with each volunteer's no-show count in the organization."""
    rows, total = await roster.shift_roster(session, ctx, event_id, shift_id, paging, status=status)
    return Page[schemas.RosterEntry].of([roster_out(r) for r in rows], paging, total)


@router.delete(
    SIGNUP,
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "`cancel_deadline_passed`, `signup_not_active`"}},
)
async def cancel_signup(
    ctx: EventsMember,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    signup_id: uuid.UUID,
    session: DbSession,
    settings: AppSettings,
) -> None:
    """Cancel one's own signup (a confirmed place until `EVENTS_CANCEL_DEADLINE_HOURS`
    before the start), or anyone's as a manager; the freed place goes to the first on the
    waiting list, who is emailed."""
    await signups.cancel_signup(session, ctx, event_id, shift_id, signup_id, settings=settings)


@router.post(
    f"{SIGNUP}/no-show",
    response_model=schemas.Signup,
    responses={409: {"description": "`shift_not_started`, `signup_not_active`"}},
)
async def mark_no_show(
    ctx: EventsManager,
    event_id: uuid.UUID,
    shift_id: uuid.UUID,
    signup_id: uuid.UUID,
    session: DbSession,
) -> schemas.Signup:
    """A confirmed volunteer did not come (once the shift has started)."""
    view = await signups.mark_no_show(session, ctx, event_id, shift_id, signup_id)
    return signup_out(view)


@router.get(
    "/{event_id}/roster.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per signup."}},
)
async def event_roster_csv(ctx: EventsManager, event_id: uuid.UUID, session: DbSession) -> Response:
    """Every shift's roster of the event as CSV: shift, times (UTC), name, email, status,
    waiting list position, no-shows, signup time."""
    text = await roster.event_roster_csv(session, ctx, event_id)
    return Response(
        content=text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="roster-{event_id}.csv"'},
    )
