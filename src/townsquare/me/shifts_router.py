"""The signed-in person's shifts across organizations and their calendar feed:
`GET /me/shifts`, `POST /me/calendar-token`, `GET /me/shifts.ics?token=`.

The feed answers without a session (calendar apps cannot sign in): the token in its URL is
the credential, so a wrong, old or missing one is a plain 404, whatever the reason.
"""

from __future__ import annotations

import hashlib
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Query, Request, Response, status

from townsquare.auth.deps import CurrentUser
from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.errors import NotFound
from townsquare.events import calendar_feed, calendar_tokens, my_shifts
from townsquare.kit import clock
from townsquare.me import shifts_schemas as schemas

router = APIRouter(route_class=TransactionalRoute, tags=["events"])

FEED_PATH = "/api/v1/me/shifts.ics"


class CalendarFeedNotFound(NotFound):
    code = "calendar_feed_not_found"
    title = "Calendar feed not found"
    detail = "No calendar feed has this token; it may have been replaced by a newer one."


@router.get(
    "/me/shifts",
    response_model=schemas.MyShiftPage,
    responses={
        400: {"description": "`invalid_cursor`"},
        401: {"description": "`not_authenticated`"},
    },
)
async def list_my_shifts(
    user: CurrentUser,
    session: DbSession,
    when: my_shifts.When = my_shifts.When.upcoming,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=my_shifts.MAX_LIMIT)] = my_shifts.DEFAULT_LIMIT,
) -> schemas.MyShiftPage:
    """The person's shifts in every organization. `when=upcoming` (the default): confirmed
    and waitlisted signups of shifts that have not ended, cancelled shifts included, soonest
    first. `when=past`: shifts that ended which they were confirmed for (`no_show` too),
    latest first. A cursor belongs to its `when`."""
    rows, next_cursor = await my_shifts.list_for_user(
        session, user.id, when=when, now=clock.now(), cursor=cursor, limit=limit
    )
    return schemas.MyShiftPage(items=[_item(row) for row in rows], next_cursor=next_cursor)


def _item(row: my_shifts.MyShiftRow) -> schemas.MyShift:
    signup, shift, event, org = row.signup, row.shift, row.event, row.organization
    return schemas.MyShift(
        id=signup.id,
        status=signup.status,
        position=row.position,
        created_at=signup.created_at,
        confirmed_at=signup.confirmed_at,
        shift=schemas.MyShiftDetails(
            id=shift.id,
            title=shift.title,
            location=shift.location or event.location,
            starts_at=shift.starts_at,
            ends_at=shift.ends_at,
            cancelled_at=shift.cancelled_at,
        ),
        event=schemas.MyShiftEvent(
            id=event.id, title=event.title, timezone=event.timezone, status=event.status
        ),
        organization=schemas.MyShiftOrganization(id=org.id, slug=org.slug, name=org.name),
    )


@router.post(
    "/me/calendar-token",
    response_model=schemas.CalendarToken,
    status_code=status.HTTP_201_CREATED,
    responses={401: {"description": "`not_authenticated`"}},
)
async def new_calendar_token(
    request: Request, user: CurrentUser, session: DbSession
) -> schemas.CalendarToken:
    """A new secret URL of the person's calendar feed (`GET /me/shifts.ics?token=`), for a
    calendar app to subscribe to. Only its hash is stored; the URL it replaces stops working
    at once."""
    token = await calendar_tokens.issue(session, user.id)
    settings: Settings = request.app.state.settings
    return schemas.CalendarToken(url=feed_url(settings, token), token=token)


def feed_url(settings: Settings, token: str) -> str:
    return f"{settings.PUBLIC_URL.rstrip('/')}{FEED_PATH}?{urlencode({'token': token})}"


@router.get(
    "/me/shifts.ics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/calendar": {"schema": {"type": "string"}}},
            "description": "An iCalendar (RFC 5545) feed of the person's shifts.",
        },
        404: {"description": "`calendar_feed_not_found`: unknown, replaced or missing token"},
    },
)
async def calendar_feed_of_token(
    request: Request,
    session: DbSession,
    token: Annotated[
        str, Query(max_length=128, description="From `POST /me/calendar-token`.")
    ] = "",
) -> Response:
    """The person's shifts as a calendar: one event per signup with a stable `UID`, a
    `SEQUENCE` that grows when the shift changes, times in the event's time zone (with its
    `VTIMEZONE`), and cancelled shifts or signups kept for 30 days as `STATUS:CANCELLED`.
    No session: the token is the credential."""
    user_id = await calendar_tokens.owner_of(session, token)
    user = await session.get(User, user_id) if user_id is not None else None
    if user is None or not user.is_active:
        raise CalendarFeedNotFound()
    settings: Settings = request.app.state.settings
    now = clock.now()
    rows = await my_shifts.feed_rows(
        session, user.id, now=now, kept_cancelled=calendar_feed.CANCELLED_KEPT_FOR
    )
    domain = urlsplit(settings.PUBLIC_URL).hostname or "townsquare"
    body = calendar_feed.render_calendar(
        [my_shifts.feed_entry(row, domain=domain) for row in rows],
        name=f"Shifts of {user.display_name}",
    )
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "Content-Disposition": 'inline; filename="shifts.ics"',
        # The URL is a secret: keep it out of the Referer of anything the feed links to.
        "Referrer-Policy": "no-referrer",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=body, media_type=calendar_feed.MEDIA_TYPE, headers=headers)
