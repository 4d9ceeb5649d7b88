"""Redis stopped and started again under two API processes of their own (the shared Redis
stays up): while it is down, sign-in answers 503 `rate_limiter_unavailable` (the limits
fail closed), chat sends are still stored and `/readyz` stays 200; once it is back, every
live socket gets `resync`, catches up with `after_seq` and ends with every acknowledged
message exactly once, in order; new messages are live across processes again."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from tests.email.servers import free_port
from tests.factories import DEFAULT_PASSWORD, create_user
from tests.realtime.conftest import conversation, organization, person
from tests.scaleout.clients import http_client, open_socket
from tests.scaleout.conftest import SCALEOUT, TOWNSQUARE, Cluster, Process
from tests.scaleout.redis_server import RedisServer
from townsquare.db import Database, transaction
from townsquare.orgs.enums import MemberRole

pytestmark = SCALEOUT

MESSAGES_PER_PHASE = 10
# Generous for a loaded machine: the bus reconnects with a backoff of up to 5 s.
RESYNC_TIMEOUT = 30.0
LIVE_TIMEOUT = 10.0
# "Live again": each new message reaches both sockets within this (a couple of seconds,
# with room for a publish retry still waiting out its backoff on a loaded machine).
LIVE_LATENCY_LIMIT = 3.0


@dataclass
class RedisPair:
    redis: RedisServer
    apis: list[Process]

    @property
    def a(self) -> Process:
        return self.apis[0]

    @property
    def b(self) -> Process:
        return self.apis[1]


@pytest.fixture
def redis_pair(cluster: Cluster, tmp_path: Path) -> Iterator[RedisPair]:
    """Two API processes like the cluster's (same settings, same database) on a private
    Redis; the cluster's workers are enough for anything queued."""
    server = RedisServer(tmp_path).start()
    env = {**cluster.env, "TOWNSQUARE_REDIS_URL": server.url}
    apis: list[Process] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            argv = [TOWNSQUARE, "serve", "--host", "127.0.0.1", "--port", str(port)]
            api = Process(f"redis-api-{name}", [*argv, "--workers", "1"], env, tmp_path / name)
            api.port = port
            apis.append(api)
            api.start()
        for api in apis:
            api.wait_ready()
        yield RedisPair(server, apis)
    finally:
        for api in apis:
            api.stop()
        server.stop()


class Inbox:
    """Every frame a socket receives, with when it arrived, read in the background."""

    def __init__(self, ws: ClientConnection) -> None:
        self.frames: list[tuple[float, dict[str, Any]]] = []
        self._new = asyncio.Event()
        self._reading = asyncio.create_task(self._read(ws))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self.frames.append((time.perf_counter(), json.loads(raw)))
                self._new.set()
        finally:
            self._new.set()

    async def first(
        self, matches: Callable[[dict[str, Any]], bool], *, start: int = 0, timeout: float
    ) -> int:
        """The index of the first frame from `start` on that `matches`, waiting for it."""
        async with asyncio.timeout(timeout):
            while True:
                self._new.clear()
                for index in range(start, len(self.frames)):
                    if matches(self.frames[index][1]):
                        return index
                assert not self._reading.done(), "the socket closed"
                await self._new.wait()

    def messages(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        return [
            frame["data"]
            for _, frame in self.frames[start:stop]
            if frame["type"] == "message.created"
        ]

    async def close(self) -> None:
        self._reading.cancel()
        await asyncio.gather(self._reading, return_exceptions=True)


def _message(seq: int) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == "message.created" and frame["data"]["seq"] == seq


def _resync(frame: dict[str, Any]) -> bool:
    return bool(frame["type"] == "resync")


async def _catch_up(client: httpx.AsyncClient, path: str, after_seq: int) -> list[dict[str, Any]]:
    caught: list[dict[str, Any]] = []
    cursor: int | None = after_seq
    while cursor is not None:
        answer = await client.get(path, params={"after_seq": cursor, "limit": 100})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        caught.extend(page["items"])
        cursor = page["next_cursor"]
    return caught


@dataclass
class Reader:
    """One client following the README's reconnect recipe on its socket."""

    inbox: Inbox
    client: httpx.AsyncClient
    held: dict[int, str] = field(default_factory=dict)
    caught_up: list[int] = field(default_factory=list)
    """How many messages each `resync` fetched."""

    async def apply(self, path: str, start: int = 0, stop: int | None = None) -> None:
        """Apply frames [start, stop): messages not held yet are kept, and a `resync`
        catches up from the newest seq held."""
        for _, frame in self.inbox.frames[start:stop]:
            if frame["type"] == "message.created":
                self.held.setdefault(frame["data"]["seq"], frame["data"]["body"])
            elif frame["type"] == "resync":
                caught = await _catch_up(self.client, path, max(self.held, default=0))
                seqs = [message["seq"] for message in caught]
                assert seqs == sorted(seqs)
                assert not set(seqs) & set(self.held)
                self.held.update((message["seq"], message["body"]) for message in caught)
                self.caught_up.append(len(caught))


async def _login(client: httpx.AsyncClient, email: str, address: str) -> httpx.Response:
    return await client.post(
        "/auth/login",
        json={"email": email, "password": DEFAULT_PASSWORD},
        headers={"X-Forwarded-For": address},
    )


async def test_a_redis_restart_pauses_sign_in_and_live_events_resume_with_nothing_missing(
    redis_pair: RedisPair, cluster: Cluster, shared_db: Database
) -> None:
    customer = await person(shared_db, cluster.settings, display_name="Customer")
    agent = await person(shared_db, cluster.settings, display_name="Agent")
    async with transaction(shared_db) as session:
        signing_in = (await create_user(session)).email
    org = await organization(shared_db, {MemberRole.owner: [agent]})
    chat = await conversation(shared_db, org, customer)
    path = f"/orgs/{org.slug}/conversations/{chat.id}/messages"
    pair = redis_pair
    acknowledged: dict[int, str] = {}
    async with AsyncExitStack() as stack:
        # The agent listens on A, the customer on B; each writes through the other one.
        readers = [
            Reader(
                Inbox(await open_socket(stack, cluster, pair.a, agent)),
                await http_client(stack, cluster, pair.a, agent),
            ),
            Reader(
                Inbox(await open_socket(stack, cluster, pair.b, customer)),
                await http_client(stack, cluster, pair.b, customer),
            ),
        ]
        for reader in readers:
            stack.push_async_callback(reader.inbox.close)
        senders = [
            await http_client(stack, cluster, pair.b, agent),
            await http_client(stack, cluster, pair.a, customer),
        ]
        anonymous = [await http_client(stack, cluster, api) for api in pair.apis]
        probes = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=api.url, timeout=10))
            for api in pair.apis
        ]

        async def send(n: int, phase: str) -> int:
            body = f"{phase}{n}"
            answer = await senders[n % 2].post(path, json={"body": body})
            assert answer.status_code == 201, answer.text
            seq: int = answer.json()["seq"]
            acknowledged[seq] = body
            return seq

        for n in range(MESSAGES_PER_PHASE):
            seq = await send(n, "before")
            for reader in readers:
                await reader.inbox.first(_message(seq), timeout=LIVE_TIMEOUT)
        for reader in readers:
            assert [m["seq"] for m in reader.inbox.messages()] == sorted(acknowledged)

        pair.redis.stop()
        stopped_at = time.perf_counter()
        for n, client in enumerate(anonymous):
            answer = await _login(client, signing_in, f"192.0.2.{n + 1}")
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["code"] == "rate_limiter_unavailable"
            assert answer.headers["retry-after"]
        during = [await send(n, "during") for n in range(MESSAGES_PER_PHASE)]
        for reader in readers:
            listed = await reader.client.get(path, params={"after_seq": 0, "limit": 100})
            assert listed.status_code == 200, listed.text
            assert during[-1] in [m["seq"] for m in listed.json()["items"]]
        for probe in probes:
            ready = await probe.get("/readyz")
            assert ready.status_code == 200, ready.text

        pair.redis.start()
        started_at = time.perf_counter()
        outage = started_at - stopped_at
        resynced = [
            await reader.inbox.first(_resync, start=0, timeout=RESYNC_TIMEOUT) for reader in readers
        ]
        resync_after = [
            reader.inbox.frames[i][0] - started_at
            for reader, i in zip(readers, resynced, strict=True)
        ]
        for reader, index in zip(readers, resynced, strict=True):
            await reader.apply(path, stop=index + 1)
            assert reader.held == acknowledged

        latencies: list[float] = []
        after: list[int] = []
        for n in range(MESSAGES_PER_PHASE):
            sent = time.perf_counter()
            seq = await send(n, "after")
            after.append(seq)
            for reader in readers:
                index = await reader.inbox.first(_message(seq), timeout=LIVE_TIMEOUT)
                latencies.append(reader.inbox.frames[index][0] - sent)
        for reader, index in zip(readers, resynced, strict=True):
            await reader.apply(path, start=index + 1)
            # Sends cut off by the outage may still be published late (the publisher
            # retries); the recipe drops them as held. The new ones arrive in order.
            live = [m["seq"] for m in reader.inbox.messages(index + 1) if m["seq"] in after]
            assert live == after

        for n, client in enumerate(anonymous):
            answer = await _login(client, signing_in, f"192.0.2.{n + 10}")
            assert answer.status_code == 200, answer.text
        for api in pair.apis:
            assert api.alive(), f"{api.name} died:\n{api.log_tail()}"

    print(
        f"\nRedis stopped for {outage:.1f} s ({MESSAGES_PER_PHASE} messages stored meanwhile, "
        f"sign-in 503); resync {max(resync_after) * 1000:.0f} ms after the restart, caught up "
        f"{[reader.caught_up[0] for reader in readers]} messages on it (A, B; "
        f"{[len(reader.caught_up) for reader in readers]} resyncs in all); live again: max "
        f"{max(latencies) * 1000:.0f} ms send-to-deliver; {len(acknowledged)} acknowledged, "
        f"every socket holds each once"
    )
    for reader in readers:
        assert reader.held == acknowledged
        assert list(reader.held) == sorted(reader.held)
    assert max(latencies) < LIVE_LATENCY_LIMIT
