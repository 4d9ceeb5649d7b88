"""The memory bus and `events.publish`: fan-out, a subscriber that falls behind, events
sent after commit in their order, JSON for what services hand over."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from tests.conftest import RolledBackDatabase
from townsquare.config import Settings
from townsquare.db import transaction
from townsquare.realtime import bus as bus_module
from townsquare.realtime import events
from townsquare.realtime.bus import Delivery, MemoryBus, create_bus
from townsquare.realtime.redis_bus import RedisBus


@pytest.fixture
def bus() -> Iterator[MemoryBus]:
    memory = MemoryBus()
    bus_module.set_bus(memory)
    yield memory
    bus_module.set_bus(None)


async def take(deliveries: AsyncIterator[Delivery], count: int) -> list[Delivery]:
    return [await asyncio.wait_for(anext(deliveries), 1) for _ in range(count)]


class TestMemoryBus:
    async def test_each_subscriber_of_a_channel_gets_the_event(self, bus: MemoryBus) -> None:
        first = await bus.subscribe(["a", "b"])
        second = await bus.subscribe(["b"])
        await bus.publish("a", {"type": "x", "data": {"n": 1}})
        await bus.publish("b", {"type": "y", "data": {"n": 2}})
        got_first = await take(aiter(first.events()), 2)
        got_second = await take(aiter(second.events()), 1)
        assert [(d.channel, d.event["type"]) for d in got_first] == [("a", "x"), ("b", "y")]
        assert got_second[0].text == '{"type":"y","data":{"n":2}}'

    async def test_removed_and_closed_subscribers_hear_nothing(self, bus: MemoryBus) -> None:
        subscription = await bus.subscribe(["a", "b"])
        await subscription.remove(["a"])
        await bus.publish("a", {"type": "x", "data": {}})
        await bus.publish("b", {"type": "y", "data": {}})
        (only,) = await take(aiter(subscription.events()), 1)
        assert only.event["type"] == "y"
        await subscription.close()
        assert bus.local_channels() == []

    async def test_a_subscriber_that_falls_behind_is_dropped_not_waited_for(
        self, bus: MemoryBus
    ) -> None:
        slow = await bus.subscribe(["a"], queue_size=3)
        fast = await bus.subscribe(["a"])
        for n in range(5):
            await bus.publish("a", {"type": "x", "data": {"n": n}})
        await asyncio.wait_for(slow.overflowed(), 1)
        assert [d.event["data"]["n"] for d in await take(aiter(fast.events()), 5)] == [
            0,
            1,
            2,
            3,
            4,
        ]

    async def test_uuids_datetimes_and_enums_travel_as_json(self, bus: MemoryBus) -> None:
        subscription = await bus.subscribe(["a"])
        ident = uuid.uuid4()
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        await bus.publish("a", {"type": "x", "data": {"id": ident, "at": at}})
        (item,) = await take(aiter(subscription.events()), 1)
        assert item.event["data"] == {"id": str(ident), "at": "2026-01-02T03:04:05Z"}


class TestPublish:
    async def test_sent_after_commit_in_order(self, bus: MemoryBus, db: RolledBackDatabase) -> None:
        deliveries = aiter((await bus.subscribe(["a", "b"])).events())
        waiting = asyncio.ensure_future(anext(deliveries))
        async with transaction(db) as session:
            events.publish(session, "a", "first", {})
            events.publish(session, "b", "second", {})
            events.publish(session, "a", "third", {})
            await asyncio.sleep(0)
            assert not waiting.done()
        got = [await asyncio.wait_for(waiting, 1), *await take(deliveries, 2)]
        assert [d.event["type"] for d in got] == ["first", "second", "third"]

    async def test_a_rolled_back_session_sends_nothing_and_starts_afresh(
        self, bus: MemoryBus, db: RolledBackDatabase
    ) -> None:
        subscription = await bus.subscribe(["a"])
        session = db.session()
        try:
            events.publish(session, "a", "lost", {})
            await session.rollback()
            session.info.pop("after_commit", None)
            events.publish(session, "a", "kept", {})
            await session.commit()
            for callback in session.info.pop("after_commit", []):
                await callback()
        finally:
            await session.close()
        (only,) = await take(aiter(subscription.events()), 1)
        assert only.event["type"] == "kept"

    async def test_an_event_that_is_not_json_does_not_hold_back_the_others(
        self, bus: MemoryBus, db: RolledBackDatabase
    ) -> None:
        subscription = await bus.subscribe(["a"])
        async with transaction(db) as session:
            events.publish(session, "a", "broken", {"thing": object()})
            events.publish(session, "a", "fine", {})
        (only,) = await take(aiter(subscription.events()), 1)
        assert only.event["type"] == "fine"


class TestCreateBus:
    def test_memory_without_redis_url(self, settings: Settings) -> None:
        assert isinstance(create_bus(settings), MemoryBus)

    async def test_redis_with_redis_url(self, settings: Settings) -> None:
        bus = create_bus(settings.model_copy(update={"REDIS_URL": "redis://127.0.0.1:6379/14"}))
        assert isinstance(bus, RedisBus)
        await bus.close()
