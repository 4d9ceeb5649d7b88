"""Support chat, send → deliver: 1,000 WebSockets on one Townsquare process, next to a floor.

Run (from the repository root):

    make bench-chat                           # = .venv/bin/python bench/chat_ws.py
    .venv/bin/python bench/chat_ws.py --repeat 3 --rate 200 --duration 20
    .venv/bin/python bench/chat_ws.py --profile   # then cProfile Townsquare's event loop

What one run does (every step has a time limit; loopback only):
1. drops and creates the PostgreSQL database (`--url`, default townsquare_bench_chat) and
   its schema (`townsquare migrate`; bench/cms_data.py), dropped again at the end unless
   `--keep`;
2. starts Townsquare (`townsquare serve --workers 1`, ENV=production, memory bus,
   RUN_WORKER_IN_PROCESS=false, RATE_LIMIT_ENABLED=false, LOG_LEVEL=WARNING) and the floor
   (bench/chat_floor.py: bare ASGI + asyncpg, `uvicorn --workers 1`), side by side;
3. sets up one organization with `--agents` agents, `--conversations` customers with a
   conversation each and `--sockets` minus those sockets' worth of signed-in visitors with
   no conversation (bench/chat_data.py);
4. per server (order alternating per round): opens the sockets from `--client-procs`
   receiver processes (`websockets`, permessage-deflate as browsers offer it) and waits for
   `ready` on each; every agent socket hears every message of the organization (the
   inbox), a customer's sockets hear their own conversation;
5. sends `--rate` messages/s for `--duration` s after a `--warmup` (open loop over
   keep-alive httpx connections, conversations in turn, from the customer and an agent by
   turns), then as fast as `--senders` closed-loop senders go (`--saturation` s);
6. waits until every accepted message reached every socket that should hear it, and
   records send → deliver latency per delivery, missing and doubled deliveries, messages/s,
   and CPU per message of the server, of its PostgreSQL backends and of the clients;
7. prints medians next to the floor's with the targets (p99 < 50 ms at 200 msg/s, >= 0.5x
   the floor's messages/s flat out) and the load average, saves JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import chat_data
import cms_data
from chat_clients import Sockets, SocketSpec, fanout, raise_open_files, socket_specs
from chat_report import Result, print_profile, print_table, summarize
from chat_senders import Senders
from chat_servers import BENCH, REPO, SECRET_KEY, Server, running
from cms_public import backend_cpu_seconds
from media_probe import main_thread_cpu, process_cpu

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/townsquare_bench_chat"


# --- one server's runs -----------------------------------------------------------------------


class Meter:
    """CPU seconds of the server, its event-loop thread, its database backends, clients."""

    def __init__(self, server: Server, database: str, sockets: Sockets) -> None:
        self.server = server
        self.database = database
        self.sockets = sockets
        self._backends: dict[int, float] | None = None
        self._database_cpu = 0.0

    def _database(self) -> float:
        """Backends come and go (the pools reconnect): sum what each spent between reads;
        one that appeared since the last read counts whole."""
        current = backend_cpu_seconds(self.database)
        if self._backends is not None:
            for pid, cpu in current.items():
                self._database_cpu += cpu - self._backends.get(pid, 0.0)
        self._backends = current
        return self._database_cpu

    def read(self) -> dict[str, float]:
        pids = self.server.pids
        return {
            "server": sum(process_cpu(pid) for pid in pids),
            "loop": sum(main_thread_cpu(pid) for pid in pids),
            "database": self._database(),
            "receivers": self.sockets.cpu(),
            "senders": process_cpu(os.getpid()),
        }


def measure(
    server: Server,
    cast: chat_data.Cast,
    specs: list[SocketSpec],
    args: argparse.Namespace,
    round_: int,
    target: cms_data.Target,
    idles: list[dict[str, Any]],
) -> list[Result]:
    sockets = Sockets(server.port, specs, args.client_procs)
    results: list[Result] = []
    try:
        opened = sockets.connect(None if args.no_compression else "deflate")
        print(
            f"  {server.name}: {opened['sockets']} sockets ready in {opened['seconds']:.1f} s"
            f" (handshake p50 {opened['handshake_p50_ms']:.0f} ms,"
            f" max {opened['handshake_max_ms']:.0f} ms)"
        )
        meter = Meter(server, target.name, sockets)
        idle = {"server": 0.0, "database": 0.0}
        if args.idle:
            before = meter.read()
            time.sleep(args.idle)
            after = meter.read()
            idle = {k: (after[k] - before[k]) / args.idle for k in ("server", "database")}
            print(
                f"  {server.name}: idle with {opened['sockets']} sockets for {args.idle:g} s:"
                f" server {100 * idle['server']:.0f}% of a core,"
                f" its database backends {100 * idle['database']:.0f}%"
            )
            idles.append({"server": server.name, "round": round_, **opened, **idle})
        senders = Senders(server.base_url, cast, args.connections)
        runner = asyncio.Runner()  # one loop for every run: keep-alive connections stay
        offset = 0
        plans = [
            (rate, f"{rate:g} msg/s", args.warmup, args.duration) for rate in _rates(args.rate)
        ]
        plans.append((0.0, f"flat out, {args.senders} senders", 2.0, args.saturation))
        for number, (rate, label, warmup, seconds) in enumerate(plans):
            for phase in ("warm", "run"):
                name = f"r{round_}{server.name[0]}{number}{phase}"
                length = warmup if phase == "warm" else seconds
                before, load = meter.read(), os.getloadavg()[0]
                if rate:
                    coroutine = senders.at_rate(name, rate, length, offset)
                else:
                    coroutine = senders.flat_out(name, args.senders, length, offset)
                log = runner.run(coroutine)
                offset += len(log.sent) + sum(log.failures.values()) + 1
                drained = sockets.drain(name, len(log.sent))
                after = meter.read()
                report = sockets.report(name, log)
                if phase == "warm":
                    continue
                result = summarize(
                    server.name, label, round_, log, report, before, after, load, drained, idle
                )
                results.append(result)
                print(f"  {result.line()}")
        runner.run(senders.aclose())
        runner.close()
    finally:
        sockets.close()
    return results


# --- main -------------------------------------------------------------------------------------


def _rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL database (recreated)")
    parser.add_argument("--sockets", type=int, default=1000, help="WebSockets in all")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--agent-sockets", type=int, default=1, help="sockets per agent")
    parser.add_argument("--conversations", type=int, default=250, help="one customer each")
    parser.add_argument("--customer-sockets", type=int, default=3, help="sockets per customer")
    parser.add_argument(
        "--rate", default="200", help="messages/s of the fixed-rate runs, comma-separated"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds at --rate")
    parser.add_argument("--warmup", type=float, default=5.0, help="discarded seconds first")
    parser.add_argument("--senders", type=int, default=32, help="closed-loop senders flat out")
    parser.add_argument(
        "--idle", type=float, default=25.0, help="seconds idle with the sockets open, measured"
    )
    parser.add_argument("--saturation", type=float, default=15.0, help="seconds flat out")
    parser.add_argument("--connections", type=int, default=64, help="httpx keep-alive pool")
    parser.add_argument("--client-procs", type=int, default=2, help="receiver processes")
    parser.add_argument("--pool-size", type=int, default=10, help="database pool per server")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, servers alternating")
    parser.add_argument("--only", choices=("townsquare", "floor"), help="one server only")
    parser.add_argument("--no-compression", action="store_true", help="no permessage-deflate")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, cProfile Townsquare at the lowest --rate",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    raise_open_files(4 * args.sockets + 1024)
    target = cms_data.Target.parse(args.url)
    asyncio.run(cms_data.recreate_database(target))
    asyncio.run(cms_data.create_schema(target))
    started = datetime.now(UTC)
    results: list[Result] = []
    idles: list[dict[str, Any]] = []
    names = [args.only] if args.only else ["townsquare", "floor"]
    try:
        with tempfile.TemporaryDirectory(prefix="townsquare-bench-chat-") as tmp:
            workdir = Path(tmp)
            with (
                running("townsquare", target, workdir, args.pool_size) as townsquare,
                running("floor", target, workdir, args.pool_size) as floor,
            ):
                visitors = args.sockets - args.agents * args.agent_sockets
                visitors -= args.conversations * args.customer_sockets
                if visitors < 0:
                    raise SystemExit("--sockets is fewer than the agents' and customers' sockets")
                cast = asyncio.run(
                    chat_data.make_cast(
                        townsquare.base_url,
                        target,
                        secret_key=SECRET_KEY,
                        agents=args.agents,
                        customers=args.conversations,
                        visitors=visitors,
                    )
                )
                specs = socket_specs(cast, args.agent_sockets, args.customer_sockets)
                print(
                    f"{len(specs)} sockets: {args.agents} agents x {args.agent_sockets},"
                    f" {args.conversations} customers x {args.customer_sockets},"
                    f" {visitors} visitors; each message reaches {fanout(specs):.0f} sockets"
                )
                servers = {"townsquare": townsquare, "floor": floor}
                for round_ in range(args.repeat):
                    order = names if round_ % 2 == 0 else names[::-1]
                    for name in order:
                        server = servers[name]
                        results += measure(server, cast, specs, args, round_, target, idles)
            print_table(results, args)
            if args.profile:
                profile_townsquare(target, workdir, cast, specs, args)
    finally:
        if not args.keep:
            asyncio.run(_drop(target))
    out = BENCH / "results" / f"chat_ws-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "args": vars(args),
                "cpus": os.cpu_count(),
                "results": [asdict(r) for r in results],
                "idle": idles,
            },
            indent=2,
        )
    )
    print(f"\nsaved {out.relative_to(REPO)}")


def profile_townsquare(
    target: cms_data.Target,
    workdir: Path,
    cast: chat_data.Cast,
    specs: list[SocketSpec],
    args: argparse.Namespace,
) -> None:
    """A Townsquare under cProfile while it takes `--duration` s at the lowest `--rate`."""
    stats_path = workdir / "townsquare.prof"
    with running("townsquare-profiled", target, workdir, args.pool_size, stats_path) as server:
        sockets = Sockets(server.port, specs, args.client_procs)
        try:
            sockets.connect(None if args.no_compression else "deflate")
            senders = Senders(server.base_url, cast, args.connections)
            with asyncio.Runner() as runner:
                rate = min(_rates(args.rate))
                runner.run(senders.at_rate("pwarm", rate, 3, 10**8))
                pid = server.process.pid
                before = process_cpu(pid), main_thread_cpu(pid)
                os.kill(pid, signal.SIGUSR1)
                log = runner.run(senders.at_rate("prun", rate, args.duration, 2 * 10**8))
                sockets.drain("prun", len(log.sent))
                runner.run(senders.aclose())
            os.kill(pid, signal.SIGUSR2)
            cpu = process_cpu(pid) - before[0], main_thread_cpu(pid) - before[1]
            deadline = time.monotonic() + 30
            while not stats_path.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            sockets.close()
    print_profile(stats_path, BENCH / "results" / "chat_ws.prof", len(log.sent), cpu)


async def _drop(target: cms_data.Target) -> None:
    import asyncpg

    conn = await asyncpg.connect(target.maintenance_dsn, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{target.name}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
