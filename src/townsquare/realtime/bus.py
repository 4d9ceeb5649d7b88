"""The event bus: channels of JSON events, in process memory or over Redis pub/sub.

Events are published after the commit of what they announce, and may be dropped (a full
subscriber queue, a Redis hiccup): clients catch up through the REST API (`after_seq`),
so nothing that matters lives only on the bus. When a bus knows it may have lost events
(its Redis link broke) it tells its subscribers with a `resync` event.

A subscriber that falls `queue_size` events behind is dropped (`overflowed()` returns)
instead of blocking the publisher or the other subscribers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pydantic_core

if TYPE_CHECKING:
    from townsquare.config import Settings

logger = logging.getLogger("townsquare.realtime")

Event = dict[str, Any]
"""`{"type": "message.created", "data": {...}}`"""
QUEUE_SIZE = 1000
RESYNC = "resync"
"""Type of the event a bus sends its subscribers when events may have been lost."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event as a subscriber receives it: its channel, the event, and the event as JSON
    text (encoded once per process, not once per subscriber)."""

    channel: str
    event: Event
    text: str


def encode(event: Event) -> str:
    """The event as JSON (UUIDs, datetimes and enums as strings)."""
    return pydantic_core.to_json(event).decode()


def delivery(channel: str, text: str) -> Delivery:
    return Delivery(channel, json.loads(text), text)


def resync_delivery() -> Delivery:
    return delivery("", encode({"type": RESYNC, "data": {}}))


class Subscription(Protocol):
    """One subscriber's channels and the events that arrive on them."""

    async def add(self, channels: Iterable[str]) -> None:
        """Listen on `channels` too; returns once events published from now on arrive."""

    async def remove(self, channels: Iterable[str]) -> None: ...

    def events(self) -> AsyncIterator[Delivery]: ...

    async def overflowed(self) -> None:
        """Returns once the subscriber fell too far behind and was dropped."""

    async def close(self) -> None: ...


class Bus(Protocol):
    async def publish(self, channel: str, event: Event) -> None: ...

    async def subscribe(
        self, channels: Iterable[str], *, queue_size: int = QUEUE_SIZE
    ) -> Subscription: ...

    async def close(self) -> None: ...


class QueuedSubscription:
    """A subscriber of a `FanOut`: its channels and a bounded queue of deliveries."""

    def __init__(self, fan_out: FanOut, queue_size: int) -> None:
        self._fan_out = fan_out
        self.channels: set[str] = set()
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(queue_size)
        self._overflow = asyncio.Event()

    def put(self, item: Delivery) -> None:
        if self._overflow.is_set():
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            logger.warning("subscriber fell behind; dropped", extra={"channel": item.channel})
            self._overflow.set()

    async def add(self, channels: Iterable[str]) -> None:
        await self._fan_out.join(self, channels)

    async def remove(self, channels: Iterable[str]) -> None:
        await self._fan_out.leave(self, channels)

    async def events(self) -> AsyncIterator[Delivery]:
        while not self._overflow.is_set():
            yield await self._queue.get()

    async def overflowed(self) -> None:
        await self._overflow.wait()

    async def close(self) -> None:
        await self.remove(list(self.channels))


class FanOut:
    """Channels → this process's subscribers. A bus hears each channel once (the hooks
    `_listen` and `_unlisten` run for a channel's first and last local subscriber) and
    hands every event to the local subscribers itself."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[QueuedSubscription]] = {}

    async def subscribe(
        self, channels: Iterable[str], *, queue_size: int = QUEUE_SIZE
    ) -> Subscription:
        subscription = QueuedSubscription(self, queue_size)
        await subscription.add(channels)
        return subscription

    async def join(self, subscription: QueuedSubscription, channels: Iterable[str]) -> None:
        first: list[str] = []
        for channel in channels:
            if channel in subscription.channels:
                continue
            subscription.channels.add(channel)
            local = self._subscribers.setdefault(channel, set())
            if not local:
                first.append(channel)
            local.add(subscription)
        if first:
            await self._listen(first)

    async def leave(self, subscription: QueuedSubscription, channels: Iterable[str]) -> None:
        last: list[str] = []
        for channel in list(channels):
            if channel not in subscription.channels:
                continue
            subscription.channels.discard(channel)
            local = self._subscribers.get(channel)
            if local is None:
                continue
            local.discard(subscription)
            if not local:
                del self._subscribers[channel]
                last.append(channel)
        if last:
            await self._unlisten(last)

    def local_channels(self) -> list[str]:
        return list(self._subscribers)

    def deliver(self, item: Delivery) -> None:
        for subscription in list(self._subscribers.get(item.channel, ())):
            subscription.put(item)

    def deliver_to_all(self, item: Delivery) -> None:
        """Hand `item` once to every local subscriber, whatever its channels."""
        everyone = {s for local in self._subscribers.values() for s in local}
        for subscription in everyone:
            subscription.put(item)

    async def _listen(self, channels: list[str]) -> None:
        """The first local subscriber joined these channels."""

    async def _unlisten(self, channels: list[str]) -> None:
        """The last local subscriber left these channels."""


class MemoryBus(FanOut):
    """One process's bus: publishing hands the event to every local subscriber."""

    async def publish(self, channel: str, event: Event) -> None:
        self.deliver(delivery(channel, encode(event)))

    async def close(self) -> None:
        self._subscribers.clear()


def create_bus(settings: Settings) -> Bus:
    """The Redis bus when `REDIS_URL` is set (API processes and workers share events),
    otherwise a memory bus for this process alone."""
    if settings.REDIS_URL:
        from townsquare.realtime.redis_bus import RedisBus

        return RedisBus(settings.REDIS_URL)
    return MemoryBus()


_current: Bus | None = None


def set_bus(bus: Bus | None) -> None:
    """Make `bus` the process's bus (the app's lifespan and the worker do this)."""
    global _current
    _current = bus


def get_bus() -> Bus:
    """The process's bus; a memory bus until one is set."""
    global _current
    if _current is None:
        _current = MemoryBus()
    return _current
