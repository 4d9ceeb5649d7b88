"""Signups and cancellations under concurrent requests that really commit, on SQLite and
PostgreSQL (QUALITY bars 15 and 24): a shift never takes more people than it has places,
the waiting list numbers everyone once, and racing cancellations promote different people.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.events.helpers import events_url, in_days, make_event, make_shift, signups_url
from tests.factories import add_member, create_organization, create_user, sign_in
from townsquare.config import Settings
from townsquare.db import Database, transaction
from townsquare.email.models import OutboxEmail
from townsquare.events.enums import SignupStatus
from townsquare.events.models import Shift, Signup
from townsquare.main import create_app
from townsquare.orgs.enums import MemberRole

pytestmark = pytest.mark.committed

PEOPLE = 100
PLACES = 10


@asynccontextmanager
async def clients(database: Database, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` clients over one app whose requests really commit. On SQLite the app gets a
    generous busy timeout: a hundred writers queue on SQLite's one write lock, and what is
    tested is the count, not how long SQLite's busy handler lets one of them wait."""
    settings = make_settings(SQLITE_BUSY_TIMEOUT_MS=120_000)
    own = Database(settings, str(database.engine.url)) if database.is_sqlite else None
    app = create_app(settings, database=own or database)
    async with AsyncExitStack() as stack:
        if own is not None:
            stack.push_async_callback(own.dispose)
        await stack.enter_async_context(LifespanManager(app))
        made = []
        for n in range(count):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 53000 + n))
            made.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=transport, base_url="http://testserver", timeout=180
                    )
                )
            )
        yield made


async def a_team(
    database: Database, signed: list[httpx.AsyncClient]
) -> tuple[str, list[uuid.UUID]]:
    """An org whose first client is its owner and the others members: its slug and the
    clients' user ids."""
    async with transaction(database) as s:
        owner = await create_user(s, display_name="Owner")
        org = await create_organization(s, owner=owner)
        ids = [owner.id]
        await sign_in(s, signed[0], owner)
        for n, client in enumerate(signed[1:]):
            user = await create_user(s, display_name=f"Volunteer {n}")
            await add_member(s, org, user, MemberRole.member)
            await sign_in(s, client, user)
            ids.append(user.id)
        slug = org.slug
    return slug, ids


async def stored_signups(database: Database, shift_id: str) -> list[Signup]:
    async with transaction(database, write=False) as s:
        rows = await s.scalars(select(Signup).where(Signup.shift_id == uuid.UUID(shift_id)))
        return list(rows.all())


async def confirmed_count(database: Database, shift_id: str) -> int:
    async with transaction(database, write=False) as s:
        shift = await s.get(Shift, uuid.UUID(shift_id))
        assert shift is not None
        return shift.confirmed_count


def codes(responses: list[httpx.Response]) -> Counter[object]:
    return Counter(
        r.status_code if r.status_code < 400 else (r.status_code, r.json()["code"])
        for r in responses
    )


class TestCapacityHolds:
    async def test_a_hundred_racing_for_ten_places(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with clients(committed_db, PEOPLE + 1) as (manager, *volunteers):
            slug, _ = await a_team(committed_db, [manager, *volunteers])
            event = await make_event(manager, slug, starts_at=in_days(3))
            shift = await make_shift(manager, slug, event, capacity=PLACES)
            url = signups_url(slug, shift)

            responses = await asyncio.gather(*(c.post(url, json={}) for c in volunteers))

        print(f"\n{PEOPLE} racing for {PLACES} places: {dict(codes(responses))}")
        assert codes(responses) == {201: PLACES, (409, "shift_full"): PEOPLE - PLACES}
        stored = await stored_signups(committed_db, shift["id"])
        assert Counter(s.status for s in stored) == {SignupStatus.confirmed: PLACES}
        assert await confirmed_count(committed_db, shift["id"]) == PLACES

    async def test_the_waiting_list_numbers_everyone_else_once(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with clients(committed_db, PEOPLE + 1) as (manager, *volunteers):
            slug, _ = await a_team(committed_db, [manager, *volunteers])
            event = await make_event(manager, slug, starts_at=in_days(3))
            shift = await make_shift(manager, slug, event, capacity=PLACES)
            url = signups_url(slug, shift)

            responses = await asyncio.gather(
                *(c.post(url, json={"waitlist": True}) for c in volunteers)
            )

        assert codes(responses) == {201: PEOPLE}
        bodies: list[dict[str, Any]] = [r.json() for r in responses]
        assert Counter(b["status"] for b in bodies) == {
            "confirmed": PLACES,
            "waitlisted": PEOPLE - PLACES,
        }
        positions = sorted(b["position"] for b in bodies if b["status"] == "waitlisted")
        assert positions == list(range(1, PEOPLE - PLACES + 1))
        assert await confirmed_count(committed_db, shift["id"]) == PLACES
        # Most of them saw a free place before the last was taken: none is confirmed.
        assert all(b["confirmed_at"] is None for b in bodies if b["status"] == "waitlisted")
        stored = await stored_signups(committed_db, shift["id"])
        assert all(s.confirmed_at is None for s in stored if s.status == SignupStatus.waitlisted)


class TestRacingCancellations:
    async def test_two_cancellations_promote_two_different_people(
        self, committed_db: Database, settings: Settings
    ) -> None:
        rounds = 3
        async with clients(committed_db, 6) as (manager, first, second, *waiting):
            slug, ids = await a_team(committed_db, [manager, first, second, *waiting])
            event = await make_event(manager, slug, starts_at=in_days(3), hours=24)
            for n in range(rounds):
                shift = await make_shift(
                    manager, slug, event, offset_hours=4 * n, capacity=2, title=f"Round {n}"
                )
                url = signups_url(slug, shift)
                placed = [(await c.post(url, json={})).json() for c in (first, second)]
                for client in waiting:
                    joined = await client.post(url, json={"waitlist": True})
                    assert joined.json()["status"] == "waitlisted", joined.text

                cancelled = await asyncio.gather(
                    first.delete(f"{url}/{placed[0]['id']}"),
                    second.delete(f"{url}/{placed[1]['id']}"),
                )

                assert [r.status_code for r in cancelled] == [204, 204]
                stored = {s.user_id: s for s in await stored_signups(committed_db, shift["id"])}
                promoted = [ids[3], ids[4]]
                assert [stored[u].status for u in promoted] == [SignupStatus.confirmed] * 2
                assert stored[ids[5]].status == SignupStatus.waitlisted
                assert await confirmed_count(committed_db, shift["id"]) == 2

        async with transaction(committed_db, write=False) as s:
            emails = await s.scalar(
                select(func.count()).where(OutboxEmail.template == "shift_promoted")
            )
        assert emails == 2 * rounds


class TestManagersAndVolunteersAtOnce:
    async def test_edits_of_the_event_and_shift_never_deadlock_with_signups(
        self, committed_db: Database, settings: Settings
    ) -> None:
        volunteers_count = 30
        async with clients(committed_db, volunteers_count + 1) as (manager, *volunteers):
            slug, _ = await a_team(committed_db, [manager, *volunteers])
            event = await make_event(manager, slug, starts_at=in_days(3))
            shift = await make_shift(manager, slug, event, capacity=PLACES)
            url = signups_url(slug, shift)
            event_url = f"{events_url(slug)}/{event['id']}"
            shift_url = f"{event_url}/shifts/{shift['id']}"

            edits = [
                *(manager.patch(event_url, json={"location": f"Hall {n}"}) for n in range(5)),
                *(manager.patch(shift_url, json={"location": f"Gate {n}"}) for n in range(4)),
                manager.patch(shift_url, json={"capacity": PLACES + 5}),
            ]
            signups = [c.post(url, json={"waitlist": True}) for c in volunteers]
            responses = await asyncio.gather(*edits, *signups)

        assert [r.status_code for r in responses[: len(edits)]] == [200] * len(edits)
        assert codes(responses[len(edits) :]) == {201: volunteers_count}
        stored = await stored_signups(committed_db, shift["id"])
        confirmed = sum(1 for s in stored if s.status == SignupStatus.confirmed)
        assert confirmed == await confirmed_count(committed_db, shift["id"])
        assert confirmed == PLACES + 5
