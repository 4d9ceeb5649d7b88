"""Shift signups under load: Townsquare next to a floor doing the same signup by hand.

Run (from the repository root):

    make bench-signups                      # = .venv/bin/python bench/event_signups.py
    .venv/bin/python bench/event_signups.py --clients 16,64 --signups 4000 --repeat 3

What it does, on loopback only, each step bounded in time:
1. (re)creates the database (default `townsquare_bench_signups`), migrates it, and loads
   one organization with the `events` module, a published event, and --signups members,
   each with a live session (cookie token and CSRF token computed as Townsquare does);
2. starts Townsquare (`townsquare serve --workers 2`, ENV=production, no in-process
   worker, LOG_LEVEL=WARNING) and the floor (bench/event_floor.py: raw ASGI + asyncpg, 2
   uvicorn workers, a pool as large as Townsquare's pool plus its overflow);
3. for each server, each --clients count and each --repeat (the servers' order
   alternating): a fresh shift of capacity --capacity-share x --signups, in its own time
   slot (no overlap with the members' earlier shifts), then --signups members sign up for
   it once each through `clients` keep-alive connections (`POST .../signups`, every
   request a different person), timed request by request by a small asyncio client;
4. checks exactness after every run: confirmed signups == `confirmed_count` == capacity
   == the number of 201 answers, every other answer a 409 `shift_full`;
5. prints requests/s, p50/p99 latency and CPU per request (the server's processes and the
   PostgreSQL backends), the medians of the repeats, and Townsquare's ratio to the floor,
   and saves everything under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import asyncpg

import cms_data
from cms_public import (
    BIN,
    HOST,
    REPO,
    Server,
    _free_port,
    _stop,
    _townsquare_command,
    _wait_ready,
    backend_cpu_seconds,
    check_connection_budget,
    group_cpu_seconds,
    server_env,
)
from townsquare.auth.sessions import csrf_token_for
from townsquare.kit.tokens import new_token
from townsquare.models import import_all_models

BENCH = Path(__file__).resolve().parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/townsquare_bench_signups"
SECRET_KEY = "bench-" + "k" * 58  # what cms_public.server_env gives Townsquare
SESSION_COOKIE = "townsquare_session"
ORG_SLUG = "bench-events"
SERVERS = ("floor", "townsquare")
RATIO_TARGET = 0.5
SLOT = timedelta(hours=2)


# --- data --------------------------------------------------------------------------------------


@dataclass
class Fixture:
    org_id: uuid.UUID
    event_id: uuid.UUID
    members: list[tuple[str, str]]  # (session token, CSRF token)
    slots: Iterator[int] = field(default_factory=lambda: iter(range(1_000_000)))


async def load(target: cms_data.Target, members: int) -> Fixture:
    import_all_models()
    await cms_data.recreate_database(target)
    await cms_data.create_schema(target)
    now = datetime.now(UTC)
    at = now - timedelta(days=30)
    org_id = uuid.uuid4()
    event_id = uuid.uuid4()
    users, memberships, sessions, tokens = [], [], [], []
    signer = SimpleNamespace(SECRET_KEY=SECRET_KEY)
    for n in range(members):
        user_id = uuid.uuid4()
        users.append(
            {
                "id": user_id,
                "email": f"volunteer{n:05d}@bench.example",
                "display_name": f"Volunteer {n}",
                "timezone": "UTC",
                "password_hash": "!bench-no-login",
                "is_staff": False,
                "is_active": True,
                "email_verified_at": at,
                "created_at": at,
                "updated_at": at,
            }
        )
        memberships.append(
            {
                "id": uuid.uuid4(),
                "organization_id": org_id,
                "user_id": user_id,
                "role": "member",
                "created_at": at,
                "updated_at": at,
            }
        )
        token = new_token(32)
        token_hash = hashlib.sha256(token.encode()).hexdigest()
        sessions.append(
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "token_hash": token_hash,
                "user_agent": "bench",
                "last_seen_at": now,
                "expires_at": now + timedelta(days=7),
                "created_at": now,
                "updated_at": now,
            }
        )
        tokens.append((token, csrf_token_for(signer, token_hash)))  # type: ignore[arg-type]
    conn = await asyncpg.connect(target.dsn, timeout=10)
    try:
        await cms_data._copy(
            conn,
            "organizations",
            [
                {
                    "id": org_id,
                    "name": "Bench Helpers",
                    "slug": ORG_SLUG,
                    "timezone": "Europe/Berlin",
                    "created_at": at,
                    "updated_at": at,
                }
            ],
        )
        await cms_data._copy(
            conn, "organization_modules", [{"organization_id": org_id, "module": "events"}]
        )
        await cms_data._copy(conn, "users", users)
        await cms_data._copy(conn, "memberships", memberships)
        await cms_data._copy(conn, "user_sessions", sessions)
        await cms_data._copy(
            conn,
            "events",
            [
                {
                    "id": event_id,
                    "organization_id": org_id,
                    "title": "Bench festival",
                    "description": "",
                    "location": "Town hall",
                    "starts_at": now - timedelta(hours=1),
                    "ends_at": now + timedelta(days=3650),
                    "timezone": "Europe/Berlin",
                    "status": "published",
                    "published_at": at,
                    "created_at": at,
                    "updated_at": at,
                }
            ],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return Fixture(org_id=org_id, event_id=event_id, members=tokens)


async def new_shift(target: cms_data.Target, fixture: Fixture, capacity: int) -> uuid.UUID:
    """A shift in a time slot of its own, so no member's earlier signups overlap it."""
    starts = datetime.now(UTC) + timedelta(days=1) + next(fixture.slots) * SLOT
    shift_id = uuid.uuid4()
    conn = await asyncpg.connect(target.dsn, timeout=10)
    try:
        await cms_data._copy(
            conn,
            "shifts",
            [
                {
                    "id": shift_id,
                    "organization_id": fixture.org_id,
                    "event_id": fixture.event_id,
                    "title": "Bar",
                    "description": "",
                    "starts_at": starts,
                    "ends_at": starts + SLOT / 2,
                    "capacity": capacity,
                    "confirmed_count": 0,
                    "waitlist_seq": 0,
                    "sequence": 0,
                    "created_at": starts - timedelta(days=2),
                    "updated_at": starts - timedelta(days=2),
                }
            ],
        )
    finally:
        await conn.close()
    return shift_id


async def exactness(target: cms_data.Target, shift_id: uuid.UUID) -> tuple[int, int, int]:
    """(confirmed signup rows, the shift's confirmed_count, its capacity)."""
    conn = await asyncpg.connect(target.dsn, timeout=10)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM signups WHERE shift_id = $1 AND status = 'confirmed'),"
            " confirmed_count, capacity FROM shifts WHERE id = $1",
            shift_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


# --- servers -----------------------------------------------------------------------------------


def _floor_command(port: int, workers: int) -> list[str]:
    return [
        str(BIN / "uvicorn"),
        "event_floor:app",
        "--app-dir",
        str(BENCH),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@contextmanager
def running(
    name: str, target: cms_data.Target, workers: int, pool_size: int, logs: Path
) -> Iterator[Server]:
    port = _free_port()
    if name == "floor":
        command = _floor_command(port, workers)
        # Townsquare's pool may grow to DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW (10 + 10).
        env = server_env("floor", target, pool_size * 2)
        env["FLOOR_SECRET_KEY"] = SECRET_KEY
    else:
        command = _townsquare_command(port, workers)
        env = server_env("townsquare", target, pool_size)
    log = logs / f"{name}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, port, process, log)
    try:
        _wait_ready(server, "/healthz", timeout=60)
        yield server
    finally:
        _stop(process)


# --- load --------------------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    clients: int
    repeat: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    db_ms: float
    statuses: dict[str, int]
    capacity: int
    confirmed_rows: int
    confirmed_count: int
    planned: int

    @property
    def complete(self) -> bool:
        """Every planned signup was sent (False: --max-seconds stopped the run first)."""
        return self.requests == self.planned

    @property
    def errors(self) -> int:
        """Answers that are neither a signup nor `shift_full` (a 503, a timeout...)."""
        return self.requests - self.statuses.get("201", 0) - self.statuses.get("409 shift_full", 0)

    @property
    def exact(self) -> bool:
        """Confirmed rows == the shift's count == 201 answers, never above capacity, and
        == capacity when every planned signup was answered with 201 or `shift_full`."""
        created = self.statuses.get("201", 0)
        if not self.confirmed_rows == self.confirmed_count == created <= self.capacity:
            return False
        return created == self.capacity or not self.complete or self.errors > 0


def _request(port: int, path: str, token: str, csrf: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Cookie: {SESSION_COOKIE}={token}\r\nX-CSRF-Token: {csrf}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ).encode()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def drive(
    port: int, path: str, members: list[tuple[str, str]], clients: int, max_seconds: float
) -> tuple[float, list[float], Counter[str]]:
    """Every member signs up once, through `clients` connections at once (no new request
    after `max_seconds`); returns the wall time, each request's latency (s) and the
    answers (`201`, `409 shift_full`...)."""
    requests = [_request(port, path, token, csrf) for token, csrf in members]
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    next_index = iter(range(len(requests)))
    connections = [await asyncio.open_connection(HOST, port) for _ in range(clients)]

    deadline = time.perf_counter() + max_seconds

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for index in next_index:
            started = time.perf_counter()
            if started > deadline:
                return
            writer.write(requests[index])
            status, body = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            if status == 201:
                answers["201"] += 1
            else:
                try:
                    code = json.loads(body).get("code")
                except ValueError:
                    code = None
                answers[f"{status} {code}"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(reader, writer) for reader, writer in connections))
    elapsed = time.perf_counter() - started
    for _, writer in connections:
        writer.close()
    return elapsed, latencies, answers


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(
    server: Server,
    target: cms_data.Target,
    fixture: Fixture,
    clients: int,
    repeat: int,
    count: int,
    share: float,
    max_seconds: float,
) -> Run:
    capacity = max(1, int(count * share))
    shift_id = await new_shift(target, fixture, capacity)
    path = f"/api/v1/orgs/{ORG_SLUG}/events/{fixture.event_id}/shifts/{shift_id}/signups"
    cpu_before = group_cpu_seconds(server.process.pid)
    db_before = backend_cpu_seconds(target.name)
    elapsed, latencies, answers = await drive(
        server.port, path, fixture.members[:count], clients, max_seconds
    )
    cpu = group_cpu_seconds(server.process.pid) - cpu_before
    db_after = backend_cpu_seconds(target.name)
    db = sum(v - db_before.get(pid, 0.0) for pid, v in db_after.items())
    rows, confirmed_count, stored_capacity = await exactness(target, shift_id)
    return Run(
        server=server.name,
        clients=clients,
        repeat=repeat,
        requests=len(latencies),
        seconds=elapsed,
        rps=len(latencies) / elapsed,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        cpu_ms=cpu * 1000 / len(latencies),
        db_ms=db * 1000 / len(latencies),
        statuses=dict(answers),
        capacity=stored_capacity,
        confirmed_rows=rows,
        confirmed_count=confirmed_count,
        planned=count,
    )


# --- report ------------------------------------------------------------------------------------


def _median(runs: list[Run], server: str, clients: int, attribute: str) -> float:
    return statistics.median(
        getattr(r, attribute) for r in runs if r.server == server and r.clients == clients
    )


def report(runs: list[Run], clients_list: list[int]) -> list[str]:
    lines = [
        f"{'clients':>7}  {'server':<10}  {'req/s':>7}  {'p50 ms':>7}  {'p99 ms':>7}  "
        f"{'ratio':>5}  {'p99 x':>5}  {'cpu ms/req':>10}  {'db ms/req':>9}  "
        "exact (confirmed/capacity)",
    ]
    for clients in clients_list:
        floor_rps = _median(runs, "floor", clients, "rps")
        floor_p99 = _median(runs, "floor", clients, "p99_ms")
        for server in SERVERS:
            mine = [r for r in runs if r.server == server and r.clients == clients]
            rps = _median(runs, server, clients, "rps")
            p99 = _median(runs, server, clients, "p99_ms")
            exact = all(r.exact for r in mine)
            fills = ", ".join(
                f"{r.confirmed_rows}/{r.capacity}"
                + ("" if r.complete else " stopped early")
                + (f" {r.errors} errors" if r.errors else "")
                for r in mine
            )
            ratio = f"{rps / floor_rps:5.2f}" if server != "floor" else "    -"
            p99x = f"{p99 / floor_p99:5.2f}" if server != "floor" else "    -"
            lines.append(
                f"{clients:>7}  {server:<10}  {rps:>7.0f}  "
                f"{_median(runs, server, clients, 'p50_ms'):>7.1f}  {p99:>7.1f}  {ratio}  {p99x}  "
                f"{_median(runs, server, clients, 'cpu_ms'):>10.2f}  "
                f"{_median(runs, server, clients, 'db_ms'):>9.2f}  "
                f"{'yes' if exact else 'NO'} ({fills})"
            )
    for run in runs:
        if not run.exact:
            lines.append(f"NOT EXACT: {run.server} {run.clients} clients: {asdict(run)}")
        elif run.errors:
            lines.append(f"errors: {run.server} {run.clients} clients: {run.statuses}")
    return lines


def save(runs: list[Run], lines: list[str], args: argparse.Namespace) -> Path:
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"event_signups-{stamp}.json"
    path.write_text(
        json.dumps(
            {"args": vars(args), "runs": [asdict(r) for r in runs], "table": lines}, indent=2
        )
    )
    return path


# --- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL database (recreated)")
    parser.add_argument(
        "--clients", default="16,64", help="concurrent connections, comma-separated"
    )
    parser.add_argument("--signups", type=int, default=3000, help="requests (members) per run")
    parser.add_argument("--capacity-share", type=float, default=0.9, help="capacity / signups")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=400, help="signups per server first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=10, help="Townsquare's pool size")
    parser.add_argument(
        "--max-seconds", type=float, default=180, help="stop sending after this, per run"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


async def amain(args: argparse.Namespace) -> int:
    target = cms_data.Target.parse(args.url)
    clients_list = [int(c) for c in args.clients.split(",") if c.strip()]
    started = time.monotonic()
    print(f"loading {args.signups} members with sessions into {target.name} ...", flush=True)
    fixture = await load(target, args.signups)
    print(f"loaded in {time.monotonic() - started:.1f}s", flush=True)
    # Each server's pool may grow to twice --pool-size per worker.
    await check_connection_budget(target, 2 * 2 * args.pool_size * args.workers)
    runs: list[Run] = []
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-signups-")))
        servers = {
            name: stack.enter_context(running(name, target, args.workers, args.pool_size, logs))
            for name in SERVERS
        }
        for name in SERVERS:
            warm = min(args.warmup, args.signups)
            await measure(servers[name], target, fixture, 16, -1, warm, 1.0, args.max_seconds)
        for repeat in range(args.repeat):
            order = SERVERS if repeat % 2 == 0 else tuple(reversed(SERVERS))
            for clients in clients_list:
                for name in order:
                    run = await measure(
                        servers[name],
                        target,
                        fixture,
                        clients,
                        repeat,
                        args.signups,
                        args.capacity_share,
                        args.max_seconds,
                    )
                    runs.append(run)
                    print(
                        f"  {name:<10} {clients:>3} clients: {run.rps:7.0f} req/s"
                        f"  p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:6.1f} ms"
                        f"  {run.statuses}  exact={run.exact}",
                        flush=True,
                    )
        for name, server in servers.items():
            errors = [
                line
                for line in server.log.read_text(errors="replace").splitlines()
                if "traceback" in line.lower() or "error" in line.lower()
            ]
            if errors:
                print(f"{name} logged {len(errors)} error lines, e.g. {errors[0]}")
            kept = BENCH / "results" / f"event_signups-{name}.log"
            kept.parent.mkdir(exist_ok=True)
            kept.write_bytes(server.log.read_bytes())
    lines = report(runs, clients_list)
    print()
    print("\n".join(lines))
    ratios = [
        _median(runs, "townsquare", c, "rps") / _median(runs, "floor", c, "rps")
        for c in clients_list
    ]
    print(
        f"\ntarget: Townsquare >= {RATIO_TARGET}x the floor's signups/s with exact capacity:"
        f" {'met' if min(ratios) >= RATIO_TARGET and all(r.exact for r in runs) else 'NOT met'}"
    )
    print(f"saved {save(runs, lines, args)}")
    if not args.keep:
        conn = await asyncpg.connect(target.maintenance_dsn, timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{target.name}" WITH (FORCE)')
        finally:
            await conn.close()
    return 0 if all(r.exact for r in runs) else 1


def main() -> None:
    sys.exit(asyncio.run(amain(parse_args())))


if __name__ == "__main__":
    main()
