"""The Redis bus: events shared by every process on one Redis, over pub/sub.

Per process, one connection publishes (a task sends the queued events in order, pipelined,
so a request never waits on Redis) and one pub/sub connection listens on the channels its
local subscribers need, fanning each event out to them in memory: a thousand sockets cost
two Redis connections, not a thousand.

A broken listening link (Redis restarted, `CLIENT KILL`, a silent network) is rebuilt
with backoff and every local subscriber then gets a `resync` event, since what was
published meanwhile is lost. Events that could not be published are followed, once Redis
answers again, by a `resync` on their channels.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from townsquare.realtime.bus import (
    RESYNC,
    Event,
    FanOut,
    delivery,
    encode,
    resync_delivery,
)

logger = logging.getLogger("townsquare.realtime")

PREFIX = "townsquare:events:"
_CONTROL = "_bus"
# A link silent this long is pinged, and given up when the ping is not answered either.
_IDLE_SECONDS = 10.0
_RECONNECT_MIN_SECONDS = 0.1
_RECONNECT_MAX_SECONDS = 5.0
_CONFIRM_SECONDS = 5.0
_OUTBOX_SIZE = 10_000
_BATCH = 500
_CLOSE_FLUSH_SECONDS = 5.0


class RedisBus(FanOut):
    """Redis pub/sub under a key prefix (channel `user:1` is `townsquare:events:user:1`)."""

    def __init__(self, url: str, *, prefix: str = PREFIX) -> None:
        super().__init__()
        self._prefix = prefix
        self._control = f"{prefix}{_CONTROL}"
        self.client_name = f"townsquare-bus-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        """Its connections are named `<client_name>:publish` and `<client_name>:listen`."""
        self._publisher: Redis[bytes] = Redis.from_url(
            url,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            client_name=f"{self.client_name}:publish",
        )
        # No retries inside redis-py on the listening link: a reconnection means lost
        # events, so this class makes it itself and tells the subscribers.
        self._listener: Redis[bytes] = Redis.from_url(
            url,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            client_name=f"{self.client_name}:listen",
        )
        self._outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue(_OUTBOX_SIZE)
        self._unsent: set[str] = set()
        self._pubsub: PubSub | None = None
        self._listening: set[str] = set()
        self._lock = asyncio.Lock()
        self._live = asyncio.Event()
        self._missed = False
        self._pongs: dict[bytes, asyncio.Future[None]] = {}
        self._publishing: asyncio.Task[None] | None = None
        self._reading: asyncio.Task[None] | None = None
        self._closed = False
        self.connections = 0
        """How many times the listening link was (re)established."""

    async def publish(self, channel: str, event: Event) -> None:
        if self._publishing is None and not self._closed:
            self._publishing = asyncio.create_task(
                self._publish_loop(), name="townsquare-bus-publish"
            )
        try:
            self._outbox.put_nowait((channel, encode(event)))
        except asyncio.QueueFull:
            self._unsent.add(channel)
            logger.warning("bus outbox full; event dropped", extra={"channel": channel})

    async def flush(self) -> None:
        """Wait until every event published so far was sent (or given up on)."""
        if self._publishing is not None:
            await self._outbox.join()

    async def wait_live(self) -> bool:
        """True once the listening link is up (waiting a few seconds for it)."""
        if self._reading is None and not self._closed:
            self._reading = asyncio.create_task(self._listen_loop(), name="townsquare-bus-listen")
        with suppress(TimeoutError):
            await asyncio.wait_for(self._live.wait(), _CONFIRM_SECONDS)
        return self._live.is_set()

    async def close(self) -> None:
        self._closed = True
        with suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), _CLOSE_FLUSH_SECONDS)
        tasks = [task for task in (self._publishing, self._reading) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._publishing = self._reading = None
        if self._pubsub is not None:
            await _close_quietly(self._pubsub)
            self._pubsub = None
        self._subscribers.clear()
        await self._publisher.connection_pool.disconnect()
        await self._listener.connection_pool.disconnect()

    # --- publishing ----------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < _BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                await self._send(batch)
            except Exception:
                self._unsent.update(channel for channel, _ in batch)
                logger.warning("could not publish %d events", len(batch), exc_info=True)
            finally:
                for _ in batch:
                    self._outbox.task_done()

    async def _send(self, batch: Iterable[tuple[str, str]]) -> None:
        lost = set(self._unsent)
        async with self._publisher.pipeline(transaction=False) as pipe:
            for channel, text in batch:
                pipe.publish(self._prefix + channel, text)
            if lost:
                resync = encode({"type": RESYNC, "data": {}})
                for channel in lost:
                    pipe.publish(self._prefix + channel, resync)
            await pipe.execute()
        self._unsent -= lost

    # --- listening -----------------------------------------------------------------------

    async def _listen_loop(self) -> None:
        delay = _RECONNECT_MIN_SECONDS
        while True:
            pubsub = self._listener.pubsub()
            try:
                await self._connect(pubsub)
                delay = _RECONNECT_MIN_SECONDS
                await self._read(pubsub)
            except Exception as exc:
                logger.warning("Redis bus link lost; reconnecting", extra={"error": repr(exc)})
            finally:
                await self._drop(pubsub)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECONNECT_MAX_SECONDS)

    async def _connect(self, pubsub: PubSub) -> None:
        async with self._lock:
            channels = self.local_channels()
            await pubsub.subscribe(self._control, *(self._prefix + c for c in channels))
            token = _token()
            await pubsub.ping(token)
            # Commands run in order: the answer to this ping means every SUBSCRIBE above
            # is in place. Events arriving meanwhile are delivered.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + _CONFIRM_SECONDS
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError("Redis did not confirm the subscriptions")
                message = await pubsub.get_message(timeout=remaining)
                if message is None:
                    continue
                if message["type"] == "pong" and bytes(message["data"]) == token:
                    break
                self._dispatch(message)
            self._pubsub = pubsub
            self._listening = set(channels)
            self._live.set()
            self.connections += 1
        if self._missed:
            self._missed = False
            self.deliver_to_all(resync_delivery())

    async def _read(self, pubsub: PubSub) -> None:
        idle = 0
        while True:
            message = await pubsub.get_message(timeout=_IDLE_SECONDS)
            if message is None:
                idle += 1
                if idle >= 2:
                    raise ConnectionError("Redis stopped answering on the bus link")
                await pubsub.ping(b"idle")
                continue
            idle = 0
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "message":
            name = bytes(message["channel"]).decode()
            if name == self._control or not name.startswith(self._prefix):
                return
            try:
                item = delivery(name[len(self._prefix) :], bytes(message["data"]).decode())
            except ValueError:
                logger.warning("undecodable event on the bus", extra={"channel": name})
                return
            self.deliver(item)
        elif kind == "pong":
            waiter = self._pongs.pop(bytes(message["data"]), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _drop(self, pubsub: PubSub) -> None:
        async with self._lock:
            if self._pubsub is pubsub:
                self._pubsub = None
            self._listening.clear()
            self._live.clear()
            self._missed = True
            waiters, self._pongs = self._pongs, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_result(None)
        await _close_quietly(pubsub)

    async def _listen(self, channels: list[str]) -> None:
        if not await self.wait_live():
            self._missed = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        token = _token()
        async with self._lock:
            pubsub = self._pubsub
            todo = [c for c in channels if c in self._subscribers and c not in self._listening]
            if pubsub is None:
                self._missed = True
                return
            if not todo:
                return
            self._pongs[token] = waiter
            try:
                await pubsub.subscribe(*(self._prefix + c for c in todo))
                await pubsub.ping(token)
            except Exception:
                # The reader sees the broken link, reconnects with every local channel
                # and sends a resync.
                self._pongs.pop(token, None)
                self._missed = True
                return
            self._listening.update(todo)
        try:
            await asyncio.wait_for(waiter, _CONFIRM_SECONDS)
        except TimeoutError:
            self._missed = True
        finally:
            self._pongs.pop(token, None)

    async def _unlisten(self, channels: list[str]) -> None:
        async with self._lock:
            pubsub = self._pubsub
            gone = [c for c in channels if c not in self._subscribers and c in self._listening]
            if pubsub is None or not gone:
                return
            self._listening.difference_update(gone)
            with suppress(Exception):
                await pubsub.unsubscribe(*(self._prefix + c for c in gone))


def _token() -> bytes:
    return uuid.uuid4().hex.encode()


async def _close_quietly(pubsub: PubSub) -> None:
    with suppress(Exception):
        # Releases its connection to the pool; the types-redis stubs predate aclose().
        await pubsub.aclose()  # type: ignore[attr-defined]
