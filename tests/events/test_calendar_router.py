"""The calendar feed over HTTP: `POST /me/calendar-token`, `GET /me/shifts.ics?token=`,
each answer parsed back by `icalendar` and read field by field."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from types import ModuleType

import httpx
import pytest
from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.events.feed_helpers import make_event, make_shift, sign_up
from tests.factories import add_member, create_organization, create_user
from tests.orgs.conftest import NewClient
from tests.orgs.helpers import API, problem, signed_in
from townsquare.auth.models import User
from townsquare.events.calendar_tokens import CalendarToken
from townsquare.events.enums import SignupStatus
from townsquare.events.models import Shift
from townsquare.kit.tokens import hash_token
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Organization

NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
FEED = f"{API}/me/shifts.ics"
TOKEN = f"{API}/me/calendar-token"


async def new_token(client: httpx.AsyncClient) -> str:
    response = await client.post(TOKEN)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"url", "token"}
    assert body["url"] == f"http://testserver{FEED}?token={body['token']}"
    token: str = body["token"]
    return token


async def feed(client: httpx.AsyncClient, token: str) -> Calendar:
    anonymous = httpx.AsyncClient(transport=client._transport, base_url=client.base_url)
    response = await anonymous.get(FEED, params={"token": token})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    calendar = Calendar.from_ical(response.content)
    assert isinstance(calendar, Calendar)
    return calendar


def only_event(calendar: Calendar) -> Event:
    (event,) = calendar.events
    return event


def shift_path(org: Organization, shift: Shift) -> str:
    return f"{API}/orgs/{org.slug}/events/{shift.event_id}/shifts/{shift.id}"


async def arranged(
    session: AsyncSession, new_client: NewClient
) -> tuple[Organization, User, httpx.AsyncClient, httpx.AsyncClient]:
    """An org with a manager (its owner) and a volunteer, both signed in."""
    owner = await create_user(session, display_name="Owner")
    org = await create_organization(session, owner=owner, name="Park friends", timezone="UTC")
    ana = await create_user(session, display_name="Ana")
    await add_member(session, org, ana, MemberRole.member)
    return (
        org,
        ana,
        await signed_in(session, new_client, owner),
        await signed_in(session, new_client, ana),
    )


class TestToken:
    async def test_token_is_stored_hashed_and_a_new_one_revokes_the_old(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        client = (await arranged(session, new_client))[3]

        first = await new_token(client)
        await feed(client, first)
        second = await new_token(client)

        assert first != second
        stored = list(await session.scalars(select(CalendarToken.token_hash)))
        assert stored == [hash_token(second)]
        anonymous = await new_client()
        body = problem(
            await anonymous.get(FEED, params={"token": first}), 404, "calendar_feed_not_found"
        )
        assert first not in str(body)
        await feed(client, second)

    async def test_unknown_missing_or_deactivated_answers_404(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        _, ana, _, client = await arranged(session, new_client)
        token = await new_token(client)
        anonymous = await new_client()

        for params in ({"token": token + "x"}, {"token": ""}, {}):
            problem(await anonymous.get(FEED, params=params), 404, "calendar_feed_not_found")
        ana.is_active = False
        await session.flush()
        problem(await anonymous.get(FEED, params={"token": token}), 404, "calendar_feed_not_found")

    async def test_issuing_needs_a_session(self, new_client: NewClient) -> None:
        anonymous = await new_client()

        problem(await anonymous.post(TOKEN), 401, "not_authenticated")


class TestSecrecy:
    async def test_the_token_never_reaches_the_log(
        self, session: AsyncSession, new_client: NewClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        client = (await arranged(session, new_client))[3]

        with caplog.at_level(logging.DEBUG):
            token = await new_token(client)
            await feed(client, token)
            await (await new_client()).get(FEED, params={"token": token + "x"})

        # The test's own HTTP client logs the URL it called; the server must not.
        server_side = [r for r in caplog.records if not r.name.startswith("httpx")]
        assert any(r.name == "townsquare.access" for r in server_side)
        assert not [r for r in server_side if token in r.getMessage() or token in str(r.args)]


class TestFeed:
    async def test_fields_and_a_stable_uid_across_fetches(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org, _, _, client = await arranged(session, new_client)
        event = await make_event(session, org, starts_at=NOW, days=10, location="Meadow, east")
        shift = await make_shift(session, event, starts_at=NOW + timedelta(days=2), hours=3)
        shift.description = "Bring gloves"
        await session.flush()
        response = await client.post(f"{shift_path(org, shift)}/signups", json={})
        assert response.status_code == 201, response.text
        signup_id = response.json()["id"]
        token = await new_token(client)

        first = await feed(client, token)
        clock.travel(timedelta(hours=2))
        second = await feed(client, token)

        entry = only_event(first)
        assert entry.uid == f"signup-{signup_id}@testserver"
        assert only_event(second).uid == entry.uid
        assert entry.sequence == 0
        assert entry["STATUS"] == "CONFIRMED"
        assert entry["SUMMARY"] == "Bar — Summer festival"
        assert entry["LOCATION"] == "Meadow, east"
        assert "Park friends" in str(entry["DESCRIPTION"])
        assert "Bring gloves" in str(entry["DESCRIPTION"])
        assert entry["DTSTART"].params["TZID"] == "Europe/Berlin"
        # 3 October 09:00 UTC is 11:00 in Berlin (CEST).
        assert entry.decoded("DTSTART").replace(tzinfo=None) == datetime(2026, 10, 3, 11, 0)
        assert entry.decoded("DTEND").replace(tzinfo=None) == datetime(2026, 10, 3, 14, 0)
        assert [str(tz["TZID"]) for tz in first.timezones] == ["Europe/Berlin"]
        assert first.get_missing_tzids() == set()
        assert first["X-WR-CALNAME"] == "Shifts of Ana"

    async def test_sequence_grows_when_the_shift_moves(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org, _, manager, client = await arranged(session, new_client)
        event = await make_event(session, org, starts_at=NOW, days=10)
        shift = await make_shift(session, event, starts_at=NOW + timedelta(days=2), hours=3)
        assert (await client.post(f"{shift_path(org, shift)}/signups", json={})).status_code == 201
        token = await new_token(client)
        before = only_event(await feed(client, token))

        moved = await manager.patch(
            shift_path(org, shift),
            json={
                "starts_at": (shift.starts_at + timedelta(hours=1)).isoformat(),
                "ends_at": (shift.ends_at + timedelta(hours=2)).isoformat(),
            },
        )
        assert moved.status_code == 200, moved.text
        after = only_event(await feed(client, token))

        assert after.uid == before.uid
        assert after.sequence > before.sequence
        assert after.decoded("DTSTART").replace(tzinfo=None) == datetime(2026, 10, 3, 12, 0)
        assert after.decoded("DTEND").replace(tzinfo=None) == datetime(2026, 10, 3, 16, 0)
        assert after.decoded("DTSTAMP") >= before.decoded("DTSTAMP")

    async def test_cancelled_shift_is_marked_for_thirty_days(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org, _, manager, client = await arranged(session, new_client)
        event = await make_event(session, org, starts_at=NOW, days=10)
        shift = await make_shift(session, event, starts_at=NOW + timedelta(days=2))
        assert (await client.post(f"{shift_path(org, shift)}/signups", json={})).status_code == 201
        token = await new_token(client)
        before = only_event(await feed(client, token))

        assert (await manager.delete(shift_path(org, shift))).status_code == 204
        cancelled = only_event(await feed(client, token))
        clock.travel(timedelta(days=29, hours=23))
        still = only_event(await feed(client, token))
        clock.travel(timedelta(hours=2))
        gone = await feed(client, token)

        assert cancelled.uid == before.uid
        assert cancelled["STATUS"] == "CANCELLED"
        assert cancelled.sequence > before.sequence
        assert still["STATUS"] == "CANCELLED"
        assert gone.events == []

    async def test_own_cancellation_is_marked_and_a_new_signup_is_a_new_entry(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org, _, _, client = await arranged(session, new_client)
        event = await make_event(session, org, starts_at=NOW, days=10)
        shift = await make_shift(session, event, starts_at=NOW + timedelta(days=2))
        signed = await client.post(f"{shift_path(org, shift)}/signups", json={})
        token = await new_token(client)
        before = only_event(await feed(client, token))

        dropped = await client.delete(f"{shift_path(org, shift)}/signups/{signed.json()['id']}")
        assert dropped.status_code == 204, dropped.text
        cancelled = only_event(await feed(client, token))
        again = await client.post(f"{shift_path(org, shift)}/signups", json={})
        assert again.status_code == 201, again.text
        both = (await feed(client, token)).events

        assert cancelled.uid == before.uid
        assert cancelled["STATUS"] == "CANCELLED"
        assert cancelled.sequence == before.sequence + 1
        assert {(e.uid, str(e["STATUS"])) for e in both} == {
            (before.uid, "CANCELLED"),
            (f"signup-{again.json()['id']}@testserver", "CONFIRMED"),
        }

    async def test_only_my_confirmed_and_recent_shifts(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org, ana, _, client = await arranged(session, new_client)
        ben = await create_user(session)
        other_org = await create_organization(session)
        await add_member(session, other_org, ana, MemberRole.member)
        event = await make_event(session, org, starts_at=NOW - timedelta(days=400), days=500)
        elsewhere = await make_event(session, other_org, starts_at=NOW, days=5, timezone="UTC")
        mine = await make_shift(session, event, starts_at=NOW + timedelta(days=1), title="Mine")
        await sign_up(session, mine, ana)
        theirs = await make_shift(session, event, starts_at=NOW + timedelta(days=1), title="Ben")
        await sign_up(session, theirs, ben)
        waiting = await make_shift(session, event, starts_at=NOW + timedelta(days=2), title="Wait")
        await sign_up(session, waiting, ana, status=SignupStatus.waitlisted)
        missed = await make_shift(session, event, starts_at=NOW - timedelta(days=3), title="Miss")
        await sign_up(session, missed, ana, status=SignupStatus.no_show)
        old = await make_shift(session, event, starts_at=NOW - timedelta(days=380), title="Old")
        await sign_up(session, old, ana)
        abroad = await make_shift(session, elsewhere, starts_at=NOW + timedelta(days=1, hours=1))
        abroad.title = "Abroad"
        await sign_up(session, abroad, ana)
        token = await new_token(client)

        calendar = await feed(client, token)

        titles = [str(e["SUMMARY"]).split(" — ")[0] for e in calendar.events]
        assert titles == ["Miss", "Mine", "Abroad"]
        assert {str(e["STATUS"]) for e in calendar.events} == {"CONFIRMED"}
        (utc_entry,) = [e for e in calendar.events if "Abroad" in str(e["SUMMARY"])]
        assert utc_entry.decoded("DTSTART") == NOW + timedelta(days=1, hours=1)
        assert [str(tz["TZID"]) for tz in calendar.timezones] == ["Europe/Berlin"]

    async def test_unchanged_feed_answers_304_to_its_etag(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org, ana, _, client = await arranged(session, new_client)
        event = await make_event(session, org, starts_at=NOW, days=10)
        await sign_up(session, await make_shift(session, event, starts_at=NOW + timedelta(1)), ana)
        token = await new_token(client)
        anonymous = await new_client()
        first = await anonymous.get(FEED, params={"token": token})

        again = await anonymous.get(
            FEED, params={"token": token}, headers={"If-None-Match": first.headers["etag"]}
        )

        assert again.status_code == 304
        assert again.content == b""
        assert first.headers["referrer-policy"] == "no-referrer"


class TestDaylightSaving:
    """Europe/Berlin changes from CEST (+02:00) to CET (+01:00) at 01:00 UTC on 25 October
    2026 and back at 01:00 UTC on 28 March 2027."""

    async def test_night_shifts_across_both_changes(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        org, ana, _, client = await arranged(session, new_client)
        event = await make_event(session, org, starts_at=NOW, days=200)
        autumn = await make_shift(
            session, event, starts_at=datetime(2026, 10, 24, 22, 0, tzinfo=UTC), hours=7
        )
        autumn.title = "Autumn"
        spring = await make_shift(
            session, event, starts_at=datetime(2027, 3, 27, 23, 0, tzinfo=UTC), hours=4
        )
        spring.title = "Spring"
        for shift in (autumn, spring):
            await sign_up(session, shift, ana)
        token = await new_token(client)

        calendar = await feed(client, token)

        night, morning = calendar.events
        assert night["DTSTART"].params["TZID"] == "Europe/Berlin"
        # 00:00 CEST to 06:00 CET: six hours on the wall clock, seven in fact.
        assert night.decoded("DTSTART").replace(tzinfo=None) == datetime(2026, 10, 25, 0, 0)
        assert night.decoded("DTEND").replace(tzinfo=None) == datetime(2026, 10, 25, 6, 0)
        assert night.decoded("DTSTART").astimezone(UTC) == autumn.starts_at
        assert night.decoded("DTEND").astimezone(UTC) == autumn.ends_at
        # 00:00 CET to 05:00 CEST: five hours on the wall clock, four in fact.
        assert morning.decoded("DTSTART").replace(tzinfo=None) == datetime(2027, 3, 28, 0, 0)
        assert morning.decoded("DTEND").replace(tzinfo=None) == datetime(2027, 3, 28, 5, 0)
        assert morning.decoded("DTEND").astimezone(UTC) == spring.ends_at
        (zone,) = calendar.timezones
        own = zone.to_tz(lookup_tzid=False)
        for entry, shift in ((night, autumn), (morning, spring)):
            for prop, expected in (("DTSTART", shift.starts_at), ("DTEND", shift.ends_at)):
                local = entry.decoded(prop).replace(tzinfo=None)
                assert local.replace(tzinfo=own).astimezone(UTC) == expected
