"""The chat under concurrent requests that really commit (QUALITY bar 17), on SQLite and
PostgreSQL: one order with contiguous seqs, nothing lost or doubled, and retries with one
`client_msg_id` that create one message however they race."""

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
from tests.factories import add_member, create_organization, create_user, sign_in
from tests.support.conftest import API, Listener
from townsquare.config import Settings
from townsquare.db import Database, transaction
from townsquare.main import create_app
from townsquare.orgs.enums import MemberRole
from townsquare.realtime.bus import get_bus
from townsquare.realtime.events import org_agents_channel, user_channel
from townsquare.support.models import ChatMessage, Conversation

pytestmark = pytest.mark.committed

SENDERS = 20
MESSAGES_EACH = 25
RETRIES = 50


@asynccontextmanager
async def clients(
    database: Database, settings: Settings, count: int
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` clients over one app whose requests really commit (to `database`'s tables,
    which `committed_db` empties afterwards).

    SQLite has one writer at a time, and its busy handler is no queue: a writer that has
    waited a while polls less often than newcomers, so under twenty writers on a loaded
    machine one of them can wait past the default 5 s busy timeout. The app's own database
    here gets a generous one; what is tested is the order, not SQLite's fairness."""
    patient = make_settings(SQLITE_BUSY_TIMEOUT_MS=120_000)
    own = Database(patient, str(database.engine.url)) if database.is_sqlite else None
    app = create_app(settings, database=own or database)
    async with AsyncExitStack() as stack:
        if own is not None:
            stack.push_async_callback(own.dispose)
        await stack.enter_async_context(LifespanManager(app))
        made = []
        for n in range(count):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 52000 + n))
            made.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=transport, base_url="http://testserver", timeout=120
                    )
                )
            )
        yield made


async def a_desk(
    database: Database, signed: list[httpx.AsyncClient]
) -> tuple[str, uuid.UUID, list[uuid.UUID]]:
    """An org whose first client is a customer and the others its agents: its slug and id,
    and the clients' user ids."""
    async with transaction(database) as s:
        owner = await create_user(s, display_name="Owner")
        org = await create_organization(s, owner=owner)
        ids = []
        for n, client in enumerate(signed):
            user = await create_user(s, display_name=f"Person {n}")
            if n > 0:
                await add_member(s, org, user, MemberRole.agent)
            await sign_in(s, client, user)
            ids.append(user.id)
        slug, org_id = org.slug, org.id
    return slug, org_id, ids


async def all_messages(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    """Every message a reader gets by paging with `after_seq`."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        response = await client.get(url, params={"after_seq": after, "limit": 200})
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["items"]
        if page["next_cursor"] is None:
            return found
        after = page["next_cursor"]


class TestOneOrder:
    async def test_concurrent_senders_get_contiguous_seqs(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with clients(committed_db, settings, SENDERS + 1) as (customer_client, *senders):
            slug, org_id, ids = await a_desk(committed_db, [customer_client, *senders])
            opened = await customer_client.post(
                f"{API}/orgs/{slug}/conversations", json={"subject": "Race", "body": "start"}
            )
            assert opened.status_code == 201, opened.text
            cid = opened.json()["id"]
            url = f"{API}/orgs/{slug}/conversations/{cid}/messages"
            # Twenty senders: the customer and nineteen agents, every other agent writing
            # internal notes, so the customer's view is the same order with gaps.
            writers = [customer_client, *senders[: SENDERS - 1]]
            bus = get_bus()
            agents = Listener(await bus.subscribe([org_agents_channel(org_id)]))
            customer_events = Listener(await bus.subscribe([user_channel(ids[0])]))

            async def write(n: int, client: httpx.AsyncClient) -> list[int]:
                seqs = []
                for k in range(MESSAGES_EACH):
                    response = await client.post(
                        url, json={"body": f"{n}:{k}", "internal": n % 2 == 1}
                    )
                    assert response.status_code == 201, response.text
                    seqs.append(response.json()["seq"])
                return seqs

            per_writer = await asyncio.gather(*(write(n, c) for n, c in enumerate(writers)))

            total = 1 + SENDERS * MESSAGES_EACH
            every = sorted(seq for seqs in per_writer for seq in seqs)
            assert every == list(range(2, total + 1))
            for seqs in per_writer:
                assert seqs == sorted(seqs), "one sender's messages keep their order"

            as_agent = await all_messages(senders[0], url)
            assert [m["seq"] for m in as_agent] == list(range(1, total + 1))
            bodies = Counter(m["body"] for m in as_agent)
            assert len(bodies) == total
            assert set(bodies.values()) == {1}
            # Each writer's messages appear in the order they were sent.
            for n in range(SENDERS):
                mine = [m["body"] for m in as_agent if m["body"].startswith(f"{n}:")]
                assert mine == [f"{n}:{k}" for k in range(MESSAGES_EACH)]

            as_customer = await all_messages(customer_client, url)
            assert [m["seq"] for m in as_customer] == [
                m["seq"] for m in as_agent if not m["internal"]
            ]
            assert not any(m["internal"] for m in as_customer)
            public = len(as_customer)
            assert public == 1 + (SENDERS // 2) * MESSAGES_EACH

            # The bus carried each seq once, notes only to agents (in any order: each
            # request publishes after its own commit; clients order by seq).
            heard = [
                e["data"]["seq"] for e in await agents.drain() if e["type"] == "message.created"
            ]
            assert sorted(heard) == list(range(2, total + 1))
            told = [
                e["data"] for e in await customer_events.drain() if e["type"] == "message.created"
            ]
            assert sorted(m["seq"] for m in told) == [m["seq"] for m in as_customer[1:]]
            assert not any(m["internal"] for m in told)
            await agents.close()
            await customer_events.close()

        async with transaction(committed_db, write=False) as s:
            row = await s.scalar(select(Conversation).where(Conversation.id == uuid.UUID(cid)))
            assert row is not None
            assert (row.last_seq, row.last_public_seq) == (total, as_customer[-1]["seq"])


class TestRetries:
    async def test_racing_retries_create_one_message(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with clients(committed_db, settings, 1) as (customer_client,):
            slug, _, _ = await a_desk(committed_db, [customer_client])
            opened = await customer_client.post(
                f"{API}/orgs/{slug}/conversations", json={"subject": "Retry", "body": "start"}
            )
            cid = opened.json()["id"]
            url = f"{API}/orgs/{slug}/conversations/{cid}/messages"
            body = {"body": "Sent on a weak connection", "client_msg_id": "weak-1"}

            responses = await asyncio.gather(
                *(customer_client.post(url, json=body) for _ in range(RETRIES))
            )

            statuses = Counter(r.status_code for r in responses)
            assert statuses == {201: 1, 200: RETRIES - 1}, statuses
            assert len({r.json()["id"] for r in responses}) == 1
            assert {r.json()["seq"] for r in responses} == {2}
            after = await customer_client.post(url, json={"body": "next"})
            assert after.json()["seq"] == 3, "no seq was spent on a retry"

        async with transaction(committed_db, write=False) as s:
            count = await s.scalar(
                select(func.count())
                .select_from(ChatMessage)
                .where(ChatMessage.conversation_id == uuid.UUID(cid))
            )
        assert count == 3

    async def test_racing_opens_create_one_conversation(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with clients(committed_db, settings, 1) as (customer_client,):
            slug, _, (customer_id,) = await a_desk(committed_db, [customer_client])
            body = {"subject": "Once", "body": "Hello", "client_msg_id": "open-1"}

            responses = await asyncio.gather(
                *(
                    customer_client.post(f"{API}/orgs/{slug}/conversations", json=body)
                    for _ in range(RETRIES)
                )
            )

            statuses = Counter(r.status_code for r in responses)
            assert statuses == {201: 1, 200: RETRIES - 1}, statuses
            assert len({r.json()["id"] for r in responses}) == 1

        async with transaction(committed_db, write=False) as s:
            count = await s.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.customer_id == customer_id)
            )
        assert count == 1
