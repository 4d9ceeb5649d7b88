"""The Redis bus on the real Redis: two API servers share events, one listening
connection per process, a killed link comes back and says `resync`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.realtime.conftest import (
    FRAME_TIMEOUT,
    REDIS_URL,
    StartServer,
    next_frame,
    open_socket,
    person,
)
from townsquare.db import Database, transaction
from townsquare.realtime import events
from townsquare.realtime.bus import Delivery
from townsquare.realtime.events import user_channel
from townsquare.realtime.redis_bus import RedisBus

pytestmark = pytest.mark.committed


@pytest.fixture
def prefix() -> str:
    """Pub/sub channels are shared by every database of a Redis: each test has its own."""
    return f"townsquare-test:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def admin() -> AsyncIterator[redis.Redis[bytes]]:
    connection: redis.Redis[bytes] = redis.Redis.from_url(REDIS_URL)
    try:
        yield connection
    finally:
        await connection.connection_pool.disconnect()


async def connections_named(admin: redis.Redis[bytes], name: str) -> list[dict[str, Any]]:
    clients: list[dict[str, Any]] = await admin.client_list()
    return [client for client in clients if client.get("name") == name]


async def next_delivery(deliveries: AsyncIterator[Delivery]) -> Delivery:
    return await asyncio.wait_for(anext(deliveries), FRAME_TIMEOUT)


class TestTwoServers:
    async def test_events_published_on_one_reach_sockets_on_both_in_order(
        self, committed_db: Database, start_server: StartServer, prefix: str
    ) -> None:
        first = await start_server(RedisBus(REDIS_URL, prefix=prefix))
        second = await start_server(RedisBus(REDIS_URL, prefix=prefix))
        customer = await person(committed_db, first.settings)
        conversation_id = str(uuid.uuid4())
        async with AsyncExitStack() as stack:
            on_first = await open_socket(stack, first, customer)
            on_second = await open_socket(stack, second, customer)
            for seq in range(1, 51):
                async with transaction(committed_db) as session:
                    events.publish(
                        session,
                        user_channel(customer.id),
                        "message.created",
                        {"conversation_id": conversation_id, "seq": seq},
                    )
            for ws in (on_first, on_second):
                seqs = [(await next_frame(ws))["data"]["seq"] for _ in range(50)]
                assert seqs == list(range(1, 51))

    async def test_one_listening_connection_per_process(
        self,
        committed_db: Database,
        start_server: StartServer,
        prefix: str,
        admin: redis.Redis[bytes],
    ) -> None:
        bus = RedisBus(REDIS_URL, prefix=prefix)
        server = await start_server(bus)
        people = [await person(committed_db, server.settings) for _ in range(4)]
        async with AsyncExitStack() as stack:
            sockets = [await open_socket(stack, server, someone) for someone in people]
            for someone in people:
                async with transaction(committed_db) as session:
                    events.publish(session, user_channel(someone.id), "hello", {})
            for ws in sockets:
                assert (await next_frame(ws))["type"] == "hello"
            listening = await connections_named(admin, f"{bus.client_name}:listen")
            publishing = await connections_named(admin, f"{bus.client_name}:publish")
        assert len(listening) == 1
        assert int(listening[0]["sub"]) == 1 + len(people)
        assert len(publishing) == 1


class TestReconnecting:
    async def test_a_killed_link_comes_back_and_says_resync(
        self,
        committed_db: Database,
        start_server: StartServer,
        prefix: str,
        admin: redis.Redis[bytes],
    ) -> None:
        first = await start_server(RedisBus(REDIS_URL, prefix=prefix))
        second_bus = RedisBus(REDIS_URL, prefix=prefix)
        second = await start_server(second_bus)
        customer = await person(committed_db, first.settings)
        async with AsyncExitStack() as stack:
            ws = await open_socket(stack, second, customer)
            (link,) = await connections_named(admin, f"{second_bus.client_name}:listen")
            await admin.client_kill_filter(_id=link["id"])
            assert await next_frame(ws) == {"type": "resync", "data": {}}
            async with transaction(committed_db) as session:
                events.publish(session, user_channel(customer.id), "after", {"n": 1})
            assert await next_frame(ws) == {"type": "after", "data": {"n": 1}}
        assert second_bus.connections == 2

    async def test_events_that_could_not_be_published_are_followed_by_resync(
        self, prefix: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        publisher = RedisBus(REDIS_URL, prefix=prefix)
        listener = RedisBus(REDIS_URL, prefix=prefix)
        try:
            deliveries = aiter((await listener.subscribe(["user:1", "user:2"])).events())
            sent = publisher._send
            failures = [RedisConnectionError("Redis is restarting")]

            async def flaky(batch: Any) -> None:
                if failures:
                    raise failures.pop()
                await sent(batch)

            monkeypatch.setattr(publisher, "_send", flaky)
            await publisher.publish("user:1", {"type": "lost", "data": {}})
            await publisher.flush()
            await publisher.publish("user:2", {"type": "kept", "data": {}})
            kept = await next_delivery(deliveries)
            resync = await next_delivery(deliveries)
            assert (kept.channel, kept.event["type"]) == ("user:2", "kept")
            assert (resync.channel, resync.event["type"]) == ("user:1", "resync")
        finally:
            await publisher.close()
            await listener.close()

    async def test_closing_sends_what_is_queued(self, prefix: str) -> None:
        publisher = RedisBus(REDIS_URL, prefix=prefix)
        listener = RedisBus(REDIS_URL, prefix=prefix)
        try:
            deliveries = aiter((await listener.subscribe(["worker"])).events())
            for n in range(100):
                await publisher.publish("worker", {"type": "done", "data": {"n": n}})
            await publisher.close()
            received = [(await next_delivery(deliveries)).event["data"]["n"] for _ in range(100)]
            assert received == list(range(100))
        finally:
            await listener.close()
