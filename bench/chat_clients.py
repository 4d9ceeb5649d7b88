"""The clients of the chat benchmark (bench/chat_ws.py): sockets in child processes that
stamp every `message.created` they receive, and keep-alive HTTP senders.

A message's body carries its send time (`bench:<run>:<monotonic ns>:...`, taken just
before the request is handed to httpx); CLOCK_MONOTONIC is one clock for every process of
the machine, so a receiving socket in another process computes send → deliver itself.
Each receiver process holds a share of the sockets (the `websockets` library, uvloop), and
answers its parent's commands over a pipe: how many frames of a run arrived, and the run's
latencies, missing and doubled deliveries (against the messages the senders saw accepted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import resource
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import httpx

from chat_data import Cast, Person, no_cookies

HOST = "127.0.0.1"
CONNECT_CONCURRENCY = 25
BODY_PAD = 80  # a short chat line: the body is ~120 characters in all
ANSWER_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class SocketSpec:
    index: int
    kind: str  # "agent", "customer" or "visitor"
    cookie: str
    user_id: str
    conversation_id: str | None


def raise_open_files(wanted: int) -> int:
    """Raise this process's soft limit of open files (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# --- receivers (child processes) -----------------------------------------------------------


@dataclass
class _Run:
    """What one socket process received during one run, by delivery."""

    sockets: array[int] = field(default_factory=lambda: array("i"))
    conversations: list[str] = field(default_factory=list)
    seqs: array[int] = field(default_factory=lambda: array("i"))
    latencies_ms: array[float] = field(default_factory=lambda: array("d"))
    arrived_ns: array[int] = field(default_factory=lambda: array("q"))


class Receivers:
    def __init__(self, port: int, specs: Sequence[SocketSpec]) -> None:
        self.port = port
        self.specs = list(specs)
        self.runs: dict[str, _Run] = {}
        self.closes: Counter[str] = Counter()
        self.sockets: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def connect(self, compression: str | None) -> dict[str, Any]:
        from websockets.asyncio.client import connect

        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        handshakes: list[float] = []
        failures: list[str] = []

        async def one(spec: SocketSpec) -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    ws = await connect(
                        f"ws://{HOST}:{self.port}/api/v1/ws",
                        additional_headers={"Cookie": spec.cookie},
                        compression=compression,
                        ping_interval=None,
                        proxy=None,
                        open_timeout=60,
                        max_queue=None,
                    )
                    ready = json.loads(await asyncio.wait_for(ws.recv(), 60))
                except Exception as exc:
                    failures.append(f"{spec.kind} {spec.index}: {exc!r}")
                    return
                handshakes.append((time.perf_counter() - started) * 1000)
            if ready.get("type") != "ready" or ready["data"]["user_id"] != spec.user_id:
                failures.append(f"{spec.kind} {spec.index}: first frame {ready!r:.200}")
            elif spec.kind == "agent" and not ready["data"]["agent_of"]:
                failures.append(f"agent {spec.index} is nobody's agent: {ready!r:.200}")
            self.sockets.append(ws)
            self.tasks.append(asyncio.create_task(self.listen(ws, spec)))

        await asyncio.gather(*(one(spec) for spec in self.specs))
        return {"ready": len(handshakes), "failures": failures, "handshakes_ms": handshakes}

    async def listen(self, ws: Any, spec: SocketSpec) -> None:
        try:
            async for text in ws:
                now = time.monotonic_ns()
                if '"message.created"' not in text:
                    continue
                data = json.loads(text)["data"]
                _, run_name, sent, _ = data["body"].split(":", 3)
                run = self.runs.get(run_name)
                if run is None:
                    run = self.runs[run_name] = _Run()
                run.sockets.append(spec.index)
                run.conversations.append(data["conversation_id"])
                run.seqs.append(data["seq"])
                run.latencies_ms.append((now - int(sent)) / 1e6)
                run.arrived_ns.append(now)
        except Exception as exc:
            # ConnectionClosedError: the server closed with an error code (1011, 1013...).
            self.closes[f"{spec.kind} {type(exc).__name__} {ws.close_code}"] += 1
            return
        self.closes[f"{spec.kind} closed {ws.close_code}"] += 1

    def count(self, run_name: str) -> int:
        run = self.runs.get(run_name)
        return 0 if run is None else len(run.seqs)

    def report(self, run_name: str, accepted: Sequence[tuple[str, int]]) -> dict[str, Any]:
        """Latencies by receiving side, and every socket's missing, doubled and unexpected
        deliveries of `run_name` against the `(conversation_id, seq)` accepted."""
        run = self.runs.pop(run_name, _Run())
        by_conversation: dict[str, set[int]] = {}
        for conversation_id, seq in accepted:
            by_conversation.setdefault(conversation_id, set()).add(seq)
        specs = {spec.index: spec for spec in self.specs}
        seen: dict[int, set[tuple[str, int]]] = {spec.index: set() for spec in self.specs}
        latencies: dict[str, array[float]] = {"agent": array("d"), "customer": array("d")}
        last_arrival: dict[tuple[str, int], int] = {}
        doubled = unexpected = 0
        for i, socket_index in enumerate(run.sockets):
            key = (run.conversations[i], run.seqs[i])
            spec = specs[socket_index]
            if key in seen[socket_index]:
                doubled += 1
                continue
            seen[socket_index].add(key)
            wanted = spec.kind == "agent" or spec.conversation_id == key[0]
            if not wanted or key[1] not in by_conversation.get(key[0], ()):
                unexpected += 1
                continue
            latencies.setdefault(spec.kind, array("d")).append(run.latencies_ms[i])
            last_arrival[key] = max(last_arrival.get(key, 0), run.arrived_ns[i])
        expected = 0
        for spec in self.specs:
            if spec.kind == "agent":
                expected += len(accepted)
            elif spec.conversation_id is not None:
                expected += len(by_conversation.get(spec.conversation_id, ()))
        received = sum(len(v) for v in latencies.values())
        return {
            "latencies": {kind: values.tobytes() for kind, values in latencies.items()},
            "expected": expected,
            "missing": expected - received,
            "doubled": doubled,
            "unexpected": unexpected,
            "last_arrival": last_arrival,
            "closes": dict(self.closes),
        }

    async def close(self) -> dict[str, int]:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        return dict(self.closes)


async def _serve_parent(conn: Connection, receivers: Receivers) -> None:
    loop = asyncio.get_running_loop()
    while True:
        command, *args = await loop.run_in_executor(None, conn.recv)
        if command == "connect":
            conn.send(await receivers.connect(*args))
        elif command == "count":
            conn.send(receivers.count(args[0]))
        elif command == "report":
            conn.send(receivers.report(args[0], args[1]))
        elif command == "close":
            conn.send(await receivers.close())
            return


def receiver_main(conn: Connection, port: int, specs: list[SocketSpec]) -> None:
    """Entry point of a receiver process (multiprocessing, spawn)."""
    raise_open_files(len(specs) + 256)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_serve_parent(conn, Receivers(port, specs)))


def socket_specs(cast: Cast, agent_sockets: int, customer_sockets: int) -> list[SocketSpec]:
    specs: list[SocketSpec] = []

    def add(person: Person, copies: int) -> None:
        for _ in range(copies):
            specs.append(
                SocketSpec(
                    len(specs), person.kind, person.cookie, person.user_id, person.conversation_id
                )
            )

    for agent in cast.agents:
        add(agent, agent_sockets)
    for customer in cast.customers:
        add(customer, customer_sockets)
    for visitor in cast.visitors:
        add(visitor, 1)
    return specs


# --- senders (the parent process) -----------------------------------------------------------


@dataclass
class Sent:
    conversation_id: str
    seq: int
    ack_ms: float
    sent_ns: int


@dataclass
class SendLog:
    sent: list[Sent] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    behind_ms: float = 0.0  # how late the last scheduled send left (fixed rate)
    started_ns: int = 0
    ended_ns: int = 0

    @property
    def accepted(self) -> list[tuple[str, int]]:
        return [(s.conversation_id, s.seq) for s in self.sent]


class Senders:
    """Messages over keep-alive httpx connections: conversation `i % n`, from its customer
    and an agent in turn (each sender with their own session cookie and CSRF token)."""

    def __init__(self, base_url: str, cast: Cast, connections: int) -> None:
        self.cast = cast
        self.base_url = base_url
        self.connections = connections
        self._client: httpx.AsyncClient | None = None
        self.gate = asyncio.Semaphore(connections)
        self.paths = [
            f"/api/v1/orgs/{cast.org_slug}/conversations/{c.conversation_id}/messages"
            for c in cast.customers
        ]

    @property
    def client(self) -> httpx.AsyncClient:
        """Made on first use, in the event loop that sends (one loop for all runs)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                cookies=no_cookies(),
                timeout=60,
                limits=httpx.Limits(
                    max_connections=self.connections, max_keepalive_connections=self.connections
                ),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _who(self, i: int) -> tuple[int, Person]:
        count = len(self.cast.customers)
        conversation = i % count
        if (i // count) % 2 == 0 or not self.cast.agents:
            return conversation, self.cast.customers[conversation]
        return conversation, self.cast.agents[(i // count + conversation) % len(self.cast.agents)]

    async def send(self, run_name: str, i: int, log: SendLog) -> None:
        """Send message `i`, stamped now; it waits for a free connection after the stamp
        (httpx's own pool queue slows down badly when thousands of requests wait in it),
        so a server that falls behind the rate shows in the latency (no coordinated
        omission)."""
        conversation, person = self._who(i)
        sent_ns = time.monotonic_ns()
        body = f"bench:{run_name}:{sent_ns}:" + "x" * BODY_PAD
        async with self.gate:
            try:
                answer = await self.client.post(
                    self.paths[conversation],
                    json={"body": body, "client_msg_id": f"{run_name}-{i}"},
                    headers=person.headers,
                )
            except httpx.HTTPError as exc:
                log.failures[type(exc).__name__] += 1
                return
        ack_ms = (time.monotonic_ns() - sent_ns) / 1e6
        if answer.status_code != 201:
            log.failures[f"{answer.status_code} {answer.text[:120]}"] += 1
            return
        data = answer.json()
        log.sent.append(Sent(data["conversation_id"], data["seq"], ack_ms, sent_ns))

    async def at_rate(self, run_name: str, rate: float, seconds: float, offset: int) -> SendLog:
        """Open loop: message k leaves at start + k / rate whatever the answers do."""
        log = SendLog(started_ns=time.monotonic_ns())
        count = math.ceil(rate * seconds)
        start = time.monotonic()
        tasks = []
        for k in range(count):
            due = start + k / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                log.behind_ms = max(log.behind_ms, -delay * 1000)
            tasks.append(asyncio.create_task(self.send(run_name, offset + k, log)))
        # A server slower than the rate builds a backlog without end: stop waiting for it.
        _, pending = await asyncio.wait(tasks, timeout=ANSWER_GRACE_SECONDS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            log.failures[f"no answer {ANSWER_GRACE_SECONDS:g} s after the last send"] += len(
                pending
            )
        log.ended_ns = time.monotonic_ns()
        return log

    async def flat_out(self, run_name: str, workers: int, seconds: float, offset: int) -> SendLog:
        """Closed loop: `workers` senders, each sending its next message on the answer."""
        log = SendLog(started_ns=time.monotonic_ns())
        deadline = time.monotonic() + seconds
        counter = iter(range(offset, offset + 10**9))

        async def worker() -> None:
            while time.monotonic() < deadline:
                await self.send(run_name, next(counter), log)

        await asyncio.gather(*(worker() for _ in range(workers)))
        log.ended_ns = time.monotonic_ns()
        return log
