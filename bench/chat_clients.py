"""The sockets of the chat benchmark (bench/chat_ws.py), in receiver processes.

Each receiver process holds a share of the sockets (the `websockets` library, uvloop) and
stamps every `message.created` it receives: the body carries its send time
(`bench:<run>:<monotonic ns>:...`, chat_senders.py) and CLOCK_MONOTONIC is one clock for
every process of the machine, so the receiving process computes send → deliver itself.
It answers its parent's commands over a pipe (`Sockets`, below): how many frames of a run
arrived, and the run's latencies, missing and doubled deliveries against the messages the
senders saw accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import resource
import statistics
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from chat_data import Cast, Person
from chat_senders import SendLog
from media_probe import process_cpu

HOST = "127.0.0.1"
CONNECT_CONCURRENCY = 25
DRAIN_SECONDS = 30.0
STALL_SECONDS = 5.0


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


# --- the receiver processes, from the parent ---------------------------------------------


class Sockets:
    """`procs` receiver processes sharing the sockets out (round robin, so that each holds
    agents and customers alike)."""

    def __init__(self, port: int, specs: list[SocketSpec], procs: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.specs = specs
        self.fanout = fanout(specs)
        self.pipes = []
        self.processes = []
        for share in range(procs):
            mine, theirs = context.Pipe()
            process = context.Process(
                target=receiver_main, args=(theirs, port, specs[share::procs]), daemon=True
            )
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)

    def ask(self, *command: Any, timeout: float = 120) -> list[Any]:
        for pipe in self.pipes:
            pipe.send(command)
        answers = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise SystemExit(f"a receiver process did not answer {command[0]!r}")
            answers.append(pipe.recv())
        return answers

    def connect(self, compression: str | None) -> dict[str, Any]:
        started = time.perf_counter()
        answers = self.ask("connect", compression, timeout=300)
        failures = [f for a in answers for f in a["failures"]]
        if failures:
            raise SystemExit(f"{len(failures)} sockets failed to open, first: {failures[0]}")
        handshakes = sorted(h for a in answers for h in a["handshakes_ms"])
        return {
            "sockets": sum(a["ready"] for a in answers),
            "seconds": time.perf_counter() - started,
            "handshake_p50_ms": statistics.median(handshakes),
            "handshake_max_ms": handshakes[-1],
        }

    def cpu(self) -> float:
        return sum(process_cpu(p.pid) for p in self.processes if p.pid)

    def drain(self, run_name: str, messages: int) -> float:
        """Wait until the run's deliveries stop coming or all arrived; seconds waited."""
        wanted = messages * self.fanout
        started = time.monotonic()
        last, progress_at = -1, started
        while time.monotonic() - started < DRAIN_SECONDS:
            got = sum(self.ask("count", run_name))
            if got >= wanted:
                break
            if got != last:
                last, progress_at = got, time.monotonic()
            elif time.monotonic() - progress_at > STALL_SECONDS:
                break
            time.sleep(0.1)
        return time.monotonic() - started

    def report(self, run_name: str, log: SendLog) -> dict[str, Any]:
        answers = self.ask("report", run_name, log.accepted, timeout=300)
        latencies: dict[str, array[float]] = {}
        last_arrival: dict[tuple[str, int], int] = {}
        merged: dict[str, Any] = {"expected": 0, "missing": 0, "doubled": 0, "unexpected": 0}
        closes: dict[str, int] = {}
        for answer in answers:
            for kind, raw in answer["latencies"].items():
                values = latencies.setdefault(kind, array("d"))
                values.frombytes(raw)
            for key, at in answer["last_arrival"].items():
                last_arrival[key] = max(last_arrival.get(key, 0), at)
            for name in ("expected", "missing", "doubled", "unexpected"):
                merged[name] += answer[name]
            for name, count in answer["closes"].items():
                closes[name] = closes.get(name, 0) + count
        merged.update(latencies=latencies, last_arrival=last_arrival, closes=closes)
        return merged

    def close(self) -> None:
        self.ask("close")
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


def fanout(specs: list[SocketSpec]) -> float:
    """Sockets that hear one message, on average over the conversations."""
    agents = sum(1 for s in specs if s.kind == "agent")
    conversations = {s.conversation_id for s in specs if s.conversation_id}
    customers = sum(1 for s in specs if s.conversation_id)
    return agents + customers / max(1, len(conversations))
