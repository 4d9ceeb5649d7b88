"""`GET /me/shifts`: the person's shifts across organizations, upcoming and past, by cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType

from sqlalchemy.ext.asyncio import AsyncSession

from tests.events.feed_helpers import make_event, make_shift, sign_up
from tests.factories import add_member, create_organization, create_user
from tests.orgs.conftest import NewClient
from tests.orgs.helpers import API, problem, signed_in
from townsquare.events.enums import SignupStatus
from townsquare.orgs.enums import MemberRole

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
URL = f"{API}/me/shifts"


class TestMyShifts:
    async def test_upcoming_and_past_across_orgs(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        ana = await create_user(session, display_name="Ana")
        other = await create_user(session, display_name="Ben")
        park = await create_organization(session, name="Park friends", slug="park")
        choir = await create_organization(session, name="Choir", slug="choir")
        for org in (park, choir):
            await add_member(session, org, ana, MemberRole.member)
            await add_member(session, org, other, MemberRole.member)
        fair = await make_event(session, park, title="Fair", location="Meadow", days=10)
        concert = await make_event(session, choir, title="Concert", timezone="UTC", days=10)
        later = await make_shift(session, fair, starts_at=NOW + timedelta(days=2), title="Bar")
        soon = await make_shift(session, concert, starts_at=NOW + timedelta(hours=2), title="Door")
        running = await make_shift(session, fair, starts_at=NOW - timedelta(hours=1), title="Gate")
        running.location = "North gate"
        done = await make_shift(session, fair, starts_at=NOW - timedelta(days=1), title="Setup")
        missed = await make_shift(session, concert, starts_at=NOW - timedelta(days=2), title="Tea")
        full = await make_shift(session, concert, starts_at=NOW + timedelta(days=3), title="Coat")
        await sign_up(session, full, other)
        await sign_up(session, full, await create_user(session), status=SignupStatus.waitlisted)
        for shift in (later, soon, running, done):
            await sign_up(session, shift, ana)
        await sign_up(session, missed, ana, status=SignupStatus.no_show)
        await sign_up(session, full, ana, status=SignupStatus.waitlisted)
        dropped = await make_shift(session, fair, starts_at=NOW + timedelta(days=4), title="Drop")
        await sign_up(session, dropped, ana, status=SignupStatus.cancelled)
        await sign_up(session, later, other)
        client = await signed_in(session, new_client, ana)

        upcoming = (await client.get(URL)).json()
        past = (await client.get(URL, params={"when": "past"})).json()

        assert [item["shift"]["title"] for item in upcoming["items"]] == [
            "Gate",
            "Door",
            "Bar",
            "Coat",
        ]
        assert upcoming["next_cursor"] is None
        gate, door, bar, coat = upcoming["items"]
        assert gate["shift"]["location"] == "North gate"
        assert bar["shift"]["location"] == "Meadow"
        assert bar["organization"] == {"id": str(park.id), "slug": "park", "name": "Park friends"}
        assert bar["event"]["title"] == "Fair"
        assert bar["event"]["timezone"] == "Europe/Berlin"
        assert door["organization"]["slug"] == "choir"
        assert bar["status"] == "confirmed"
        assert bar["position"] is None
        assert coat["status"] == "waitlisted"
        assert coat["position"] == 2
        assert [item["shift"]["title"] for item in past["items"]] == ["Setup", "Tea"]
        assert [item["status"] for item in past["items"]] == ["confirmed", "no_show"]

    async def test_a_cancelled_shift_stays_in_upcoming_marked(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        ana = await create_user(session)
        org = await create_organization(session)
        await add_member(session, org, ana, MemberRole.member)
        event = await make_event(session, org)
        shift = await make_shift(session, event, starts_at=NOW + timedelta(hours=5))
        await sign_up(session, shift, ana)
        shift.cancelled_at = NOW - timedelta(minutes=5)
        await session.flush()
        client = await signed_in(session, new_client, ana)

        (item,) = (await client.get(URL)).json()["items"]

        assert item["shift"]["cancelled_at"] == "2026-05-04T09:55:00Z"

    async def test_pages_follow_each_other_without_overlap(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        clock.freeze(NOW)
        ana = await create_user(session)
        org = await create_organization(session)
        await add_member(session, org, ana, MemberRole.member)
        event = await make_event(session, org, starts_at=NOW - timedelta(days=5), days=10)
        # Two shifts at each start, so the id breaks ties.
        for n in range(-3, 4):
            for title in ("A", "B"):
                shift = await make_shift(
                    session, event, starts_at=NOW + timedelta(days=n, hours=1), title=f"{title}{n}"
                )
                await sign_up(session, shift, ana)
        client = await signed_in(session, new_client, ana)

        for when, expected in (("upcoming", 8), ("past", 6)):
            seen: list[str] = []
            cursor = None
            while True:
                params = {"when": when, "limit": "3"} | ({"cursor": cursor} if cursor else {})
                page = (await client.get(URL, params=params)).json()
                seen += [item["id"] for item in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            whole = (await client.get(URL, params={"when": when, "limit": "100"})).json()
            everything = [item["id"] for item in whole["items"]]
            assert seen == everything
            assert len(seen) == expected == len(set(seen))
        upcoming = (await client.get(URL, params={"limit": "100"})).json()["items"]
        times = [item["shift"]["starts_at"] for item in upcoming]
        assert times == sorted(times)

    async def test_bad_cursor_and_when(
        self, session: AsyncSession, new_client: NewClient, clock: ModuleType
    ) -> None:
        ana = await create_user(session)
        client = await signed_in(session, new_client, ana)
        org = await create_organization(session)
        await add_member(session, org, ana, MemberRole.member)
        event = await make_event(session, org, days=10)
        for n in range(3):
            await sign_up(
                session,
                await make_shift(session, event, starts_at=clock.now() + timedelta(days=n + 1)),
                ana,
            )
        page = (await client.get(URL, params={"limit": "1"})).json()

        problem(await client.get(URL, params={"cursor": "not-a-cursor"}), 400, "invalid_cursor")
        problem(
            await client.get(URL, params={"when": "past", "cursor": page["next_cursor"]}),
            400,
            "invalid_cursor",
        )
        problem(await client.get(URL, params={"when": "someday"}), 422, "validation_error")

    async def test_only_my_own_and_only_signed_in(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        ana = await create_user(session)
        ben = await create_user(session)
        org = await create_organization(session)
        await add_member(session, org, ben, MemberRole.member)
        event = await make_event(session, org, days=10)
        shift = await make_shift(session, event, starts_at=event.starts_at + timedelta(days=3))
        await sign_up(session, shift, ben)
        anonymous = await new_client()

        assert (await (await signed_in(session, new_client, ana)).get(URL)).json()["items"] == []
        problem(await anonymous.get(URL), 401, "not_authenticated")
