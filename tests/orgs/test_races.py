"""Organizations under concurrent requests that really commit: the last owner, slugs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from tests.conftest import IS_POSTGRES
from tests.factories import add_member, create_organization, create_user, sign_in
from tests.orgs.conftest import membership_of
from tests.orgs.helpers import API
from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db import Database, transaction
from townsquare.main import create_app
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Membership, Organization


@asynccontextmanager
async def _clients(
    database: Database, settings: Settings, count: int
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` clients over one app whose requests really commit."""
    app = create_app(settings, database=database)
    async with LifespanManager(app), AsyncExitStack() as stack:
        clients = []
        for n in range(count):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 51000 + n))
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://testserver")
                )
            )
        yield clients


async def _owner_count(database: Database, org_id: uuid.UUID) -> int:
    async with transaction(database, write=False) as s:
        count = await s.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.organization_id == org_id, Membership.role == MemberRole.owner)
        )
    return int(count or 0)


REPEATS = 50


class TestLastOwnerUnderConcurrency:
    """Two owners demoting each other, or both leaving, at the same moment: one succeeds,
    the other is refused, and the organization keeps an owner. Repeated."""

    async def _two_owners(
        self, database: Database, a: User, b: User
    ) -> tuple[Organization, Membership, Membership]:
        async with transaction(database) as s:
            org = await create_organization(s, owner=a)
            member_b = await add_member(s, org, b, MemberRole.owner)
            member_a = await membership_of(s, org, a)
        return org, member_a, member_b

    async def _users(
        self, database: Database, clients: list[httpx.AsyncClient]
    ) -> tuple[User, User]:
        async with transaction(database) as s:
            a = await create_user(s, display_name="Ann")
            b = await create_user(s, display_name="Bob")
            await sign_in(s, clients[0], a)
            await sign_in(s, clients[1], b)
        return a, b

    async def test_mutual_demotions(self, committed_db: Database, settings: Settings) -> None:
        async with _clients(committed_db, settings, 2) as (client_a, client_b):
            a, b = await self._users(committed_db, [client_a, client_b])
            outcomes: set[tuple[int, ...]] = set()
            for _ in range(REPEATS):
                org, member_a, member_b = await self._two_owners(committed_db, a, b)
                first, second = await asyncio.gather(
                    client_a.patch(
                        f"{API}/orgs/{org.slug}/members/{member_b.id}", json={"role": "admin"}
                    ),
                    client_b.patch(
                        f"{API}/orgs/{org.slug}/members/{member_a.id}", json={"role": "admin"}
                    ),
                )
                statuses = tuple(sorted((first.status_code, second.status_code)))
                assert statuses == (200, 403), (first.text, second.text)
                assert await _owner_count(committed_db, org.id) == 1
                outcomes.add(statuses)
        assert outcomes == {(200, 403)}

    async def test_both_leave(self, committed_db: Database, settings: Settings) -> None:
        async with _clients(committed_db, settings, 2) as (client_a, client_b):
            a, b = await self._users(committed_db, [client_a, client_b])
            for _ in range(REPEATS):
                org, _, _ = await self._two_owners(committed_db, a, b)
                first, second = await asyncio.gather(
                    client_a.post(f"{API}/orgs/{org.slug}/leave"),
                    client_b.post(f"{API}/orgs/{org.slug}/leave"),
                )
                statuses = sorted((first.status_code, second.status_code))
                assert statuses == [204, 409], (first.text, second.text)
                refused = first if first.status_code == 409 else second
                assert refused.json()["code"] == "last_owner"
                assert await _owner_count(committed_db, org.id) == 1

    async def test_one_leaves_while_the_other_demotes_them(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with _clients(committed_db, settings, 2) as (client_a, client_b):
            a, b = await self._users(committed_db, [client_a, client_b])
            for _ in range(REPEATS):
                org, member_a, _ = await self._two_owners(committed_db, a, b)
                await asyncio.gather(
                    client_a.post(f"{API}/orgs/{org.slug}/leave"),
                    client_b.patch(
                        f"{API}/orgs/{org.slug}/members/{member_a.id}", json={"role": "admin"}
                    ),
                )
                assert await _owner_count(committed_db, org.id) >= 1


class TestSlugRace:
    async def test_fifty_creates_with_one_slug(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with _clients(committed_db, settings, 1) as (client,):
            async with transaction(committed_db) as s:
                user = await create_user(s)
                await sign_in(s, client, user)

            responses = await asyncio.gather(
                *(
                    client.post(f"{API}/orgs", json={"name": f"Race {n}", "slug": "race"})
                    for n in range(50)
                )
            )

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 49, [r.text for r in responses if r.status_code >= 500]
        for response in responses:
            if response.status_code == 409:
                assert response.json()["code"] == "slug_taken"
                assert response.json()["suggestion"] == "race-2"
        async with transaction(committed_db, write=False) as s:
            count = await s.scalar(select(func.count()).select_from(Organization))
        assert count == 1

    async def test_fifty_creates_with_one_name_get_distinct_slugs(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with _clients(committed_db, settings, 1) as (client,):
            async with transaction(committed_db) as s:
                user = await create_user(s)
                await sign_in(s, client, user)

            responses = await asyncio.gather(
                *(client.post(f"{API}/orgs", json={"name": "Same Name"}) for _ in range(50))
            )

        assert all(r.status_code in (201, 409) for r in responses), [
            r.text for r in responses if r.status_code not in (201, 409)
        ]
        created = [r.json()["slug"] for r in responses if r.status_code == 201]
        assert len(created) == len(set(created))
        assert "same-name" in created
        if not IS_POSTGRES:
            # Writes are serialized on SQLite: every request finds a free suffix.
            assert len(created) == 50
