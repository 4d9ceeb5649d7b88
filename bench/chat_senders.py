"""The senders of the chat benchmark (bench/chat_ws.py): messages over keep-alive httpx
connections, at a fixed rate (open loop) or flat out (closed loop).

A message's body carries its send time (`bench:<run>:<monotonic ns>:...`); the receiving
sockets, in other processes, compute send → deliver from it (CLOCK_MONOTONIC is one clock
for every process of the machine).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from chat_data import Cast, Person, no_cookies

BODY_PAD = 80  # a short chat line: the body is ~120 characters in all
ANSWER_GRACE_SECONDS = 10.0


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
