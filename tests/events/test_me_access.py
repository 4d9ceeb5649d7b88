"""Who may call the person's own event routes. They are not org-scoped (the org matrix in
tests/orgs/matrix.py lists only `{org}` routes): every signed-in person, whatever their
roles and organizations, sees exactly their own shifts and feed; anonymous callers get
401, except the feed, whose token is its credential (404 without a valid one)."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType

import httpx
import pytest
from icalendar import Calendar
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from tests.events.feed_helpers import make_event, make_shift, sign_up
from tests.orgs.conftest import ROLES_LOW_TO_HIGH, NewClient, make_team
from tests.orgs.helpers import API, problem
from townsquare.auth.deps import CSRF_HEADER
from townsquare.events.models import Signup
from townsquare.kit.tokens import new_token

SHIFTS = f"{API}/me/shifts"
TOKEN = f"{API}/me/calendar-token"
FEED = f"{API}/me/shifts.ics"
ROUTES = [("GET", SHIFTS), ("POST", TOKEN)]


async def _own_signups(
    session: AsyncSession, new_client: NewClient, clock: ModuleType
) -> tuple[dict[str, httpx.AsyncClient], dict[str, Signup], httpx.AsyncClient]:
    """A client and one signup for every role of an org and for an outsider of it."""
    team = await make_team(session, new_client)
    event = await make_event(session, team.org, days=10)
    elsewhere = await make_event(session, team.other_org, days=10)
    clients: dict[str, httpx.AsyncClient] = {}
    signups: dict[str, Signup] = {}
    for n, role in enumerate(ROLES_LOW_TO_HIGH):
        shift = await make_shift(session, event, starts_at=clock.now() + timedelta(hours=n + 1))
        signups[role.value] = await sign_up(session, shift, team.users[role])
        clients[role.value] = team.clients[role]
    shift = await make_shift(session, elsewhere, starts_at=clock.now() + timedelta(hours=9))
    signups["outsider"] = await sign_up(session, shift, team.outsider)
    clients["outsider"] = team.outsider_client
    return clients, signups, team.anonymous


class TestPersonalRoutes:
    async def test_every_person_sees_only_their_own(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clients, signups, anonymous = await _own_signups(session, new_client, clock)

        for who, client in clients.items():
            mine = str(signups[who].id)
            listed = await client.get(SHIFTS)
            assert listed.status_code == 200, f"{who}: {listed.text}"
            assert [item["id"] for item in listed.json()["items"]] == [mine], who
            issued = await client.post(TOKEN)
            assert issued.status_code == 201, f"{who}: {issued.text}"
            fetched = await anonymous.get(FEED, params={"token": issued.json()["token"]})
            assert fetched.status_code == 200, f"{who}: {fetched.text}"
            calendar = Calendar.from_ical(fetched.content)
            assert isinstance(calendar, Calendar)
            assert [event.uid for event in calendar.events] == [f"signup-{mine}@testserver"], who

    @pytest.mark.parametrize(("method", "path"), ROUTES)
    @pytest.mark.parametrize("cookie", ["none", "unknown-session"])
    async def test_anonymous_callers_are_refused(
        self, new_client: NewClient, method: str, path: str, cookie: str
    ) -> None:
        client = await new_client()
        if cookie == "unknown-session":
            client.cookies.set(make_settings().SESSION_COOKIE_NAME, new_token(32))
            client.headers[CSRF_HEADER] = new_token(16)

        problem(await client.request(method, path), 401, "not_authenticated")

    async def test_the_feed_without_a_valid_token_is_not_found_even_signed_in(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clients, _, _ = await _own_signups(session, new_client, clock)

        for params in ({}, {"token": new_token()}):
            problem(await clients["owner"].get(FEED, params=params), 404, "calendar_feed_not_found")

    async def test_a_new_token_needs_the_csrf_header(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clients, _, _ = await _own_signups(session, new_client, clock)
        client = clients["member"]
        client.headers.pop(CSRF_HEADER)

        problem(await client.post(TOKEN), 403, "csrf_failed")
