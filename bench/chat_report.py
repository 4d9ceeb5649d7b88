"""Figures of the chat benchmark (bench/chat_ws.py): one run summed up, the table next to
the floor with the targets, and the profile by package."""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import statistics
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat_senders import SendLog
from media_probe import by_package

P99_TARGET_MS = 50.0
TARGET_RATE = 200.0  # messages/s at which the p99 target holds
RATIO_TARGET = 0.5


@dataclass
class Result:
    server: str
    run: str
    round: int
    messages: int
    failures: dict[str, int]
    seconds: float
    sent_per_s: float
    delivered_per_s: float
    frames_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    p99_by_side_ms: dict[str, float]
    ack_p50_ms: float
    ack_p99_ms: float
    expected: int
    missing: int
    doubled: int
    unexpected: int
    closes: dict[str, int]
    behind_ms: float
    drained_s: float
    cpu_ms_per_msg: dict[str, float] = field(default_factory=dict)
    cores: dict[str, float] = field(default_factory=dict)
    load: tuple[float, float] = (0.0, 0.0)

    def line(self) -> str:
        cpu = self.cpu_ms_per_msg
        return (
            f"{self.run:<26} {self.sent_per_s:7.1f} msg/s sent, {self.delivered_per_s:7.1f}"
            f" delivered; p50 {self.p50_ms:6.1f} p99 {self.p99_ms:7.1f} ms; server"
            f" {cpu.get('server', 0):.2f} ms CPU/msg; lost {self.missing} doubled {self.doubled}"
            f"; load {self.load[0]:.1f}"
        )


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def summarize(
    server: str,
    run: str,
    round_: int,
    log: SendLog,
    report: dict[str, Any],
    before: dict[str, float],
    after: dict[str, float],
    load: float,
    drained: float,
    idle: dict[str, float],
) -> Result:
    latencies: dict[str, array[float]] = report["latencies"]
    every = sorted(v for values in latencies.values() for v in values)
    acks = sorted(s.ack_ms for s in log.sent)
    seconds = (log.ended_ns - log.started_ns) / 1e9
    arrivals = report["last_arrival"]
    last = max(arrivals.values(), default=log.started_ns)
    span = max(1e-9, (last - log.started_ns) / 1e9)
    messages = len(log.sent)
    wall = seconds + drained
    spent = {k: after[k] - before[k] for k in after}

    def per_message(cpu_seconds: float) -> float:
        return 1000 * cpu_seconds / max(1, messages)

    return Result(
        server=server,
        run=run,
        round=round_,
        messages=messages,
        failures=dict(log.failures),
        seconds=seconds,
        sent_per_s=messages / seconds,
        delivered_per_s=len(arrivals) / span,
        frames_per_s=len(every) / span,
        p50_ms=_quantile(every, 0.50),
        p99_ms=_quantile(every, 0.99),
        max_ms=every[-1] if every else float("nan"),
        p99_by_side_ms={k: _quantile(sorted(v), 0.99) for k, v in latencies.items() if v},
        ack_p50_ms=_quantile(acks, 0.50),
        ack_p99_ms=_quantile(acks, 0.99),
        expected=report["expected"],
        missing=report["missing"],
        doubled=report["doubled"],
        unexpected=report["unexpected"],
        closes=report["closes"],
        behind_ms=log.behind_ms,
        drained_s=drained,
        cpu_ms_per_msg={
            "server": per_message(spent["server"]),
            # What the sockets cost with no message at all (the heartbeat's re-checks).
            "server_net": per_message(spent["server"] - idle.get("server", 0.0) * wall),
            "loop": per_message(spent["loop"]),
            "database": per_message(spent["database"]),
            "clients": per_message(spent["receivers"] + spent["senders"]),
        },
        cores={k: v / wall for k, v in spent.items()},
        load=(load, os.getloadavg()[0]),
    )


def _median(results: list[Result], key: str) -> float:
    return statistics.median(getattr(r, key) for r in results)


def _median_cpu(results: list[Result], key: str) -> float:
    return statistics.median(r.cpu_ms_per_msg[key] for r in results)


HEADER = (
    "run                   server     |   msg/s  deliv/s  frames/s |  p50 ms  p99 ms  max ms"
    " | ack p50   p99 | CPU ms/msg: server  net   db clients | lost  dup"
)


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(HEADER)
    print("-" * len(HEADER))
    runs = list(dict.fromkeys(r.run for r in results))
    medians: dict[tuple[str, str], dict[str, float]] = {}
    for run in runs:
        for server in ("townsquare", "floor"):
            mine = [r for r in results if r.run == run and r.server == server]
            if not mine:
                continue
            row = {
                key: _median(mine, key)
                for key in (
                    "sent_per_s",
                    "delivered_per_s",
                    "frames_per_s",
                    "p50_ms",
                    "p99_ms",
                    "max_ms",
                    "ack_p50_ms",
                    "ack_p99_ms",
                )
            }
            row.update({f"cpu_{k}": _median_cpu(mine, k) for k in mine[0].cpu_ms_per_msg})
            row["missing"] = sum(r.missing for r in mine)
            row["doubled"] = sum(r.doubled for r in mine)
            medians[(run, server)] = row
            print(
                f"{run:<21} {server:<10} | {row['sent_per_s']:7.1f} {row['delivered_per_s']:8.1f}"
                f" {row['frames_per_s']:9.0f} | {row['p50_ms']:7.1f} {row['p99_ms']:7.1f}"
                f" {row['max_ms']:7.1f} | {row['ack_p50_ms']:7.1f} {row['ack_p99_ms']:5.0f} |"
                f" {row['cpu_server']:18.2f} {row['cpu_server_net']:4.1f}"
                f" {row['cpu_database']:4.1f} {row['cpu_clients']:7.2f} |"
                f" {row['missing']:4.0f} {row['doubled']:4.0f}"
            )
    print(
        "\nmsg/s: messages accepted (201) per second of sending; deliv/s: messages that reached"
        "\nevery socket that should hear them, per second from the first send to the last"
        "\ndelivery; frames/s: deliveries per second; p50/p99/max: send -> deliver over every"
        "\ndelivery (message x socket); ack: the POST's own latency; CPU per message accepted:"
        "\nthe server process (all threads), the same minus what it spends idle with the sockets"
        "\nopen (net), its PostgreSQL backends, the benchmark's clients; lost/dup: deliveries"
        "\nmissing or doubled. Medians of the rounds."
    )
    _verdicts(results, medians, runs)


def _verdicts(
    results: list[Result], medians: dict[tuple[str, str], dict[str, float]], runs: list[str]
) -> None:
    fixed, flat = runs[:-1], runs[-1]
    loads = [r.load[0] for r in results] + [r.load[1] for r in results]
    print(f"load average (1 min) during the runs: {min(loads):.1f}-{max(loads):.1f}")
    for run in fixed:
        ts = medians.get((run, "townsquare"))
        if ts is None:
            continue
        verdict = ""
        if run == f"{TARGET_RATE:g} msg/s":
            met = "met" if ts["p99_ms"] < P99_TARGET_MS else "MISSED"
            verdict = f" (target < {P99_TARGET_MS:g} ms): {met}"
        print(f"{run}: townsquare p99 {ts['p99_ms']:.1f} ms{verdict}")
    ts, floor = medians.get((flat, "townsquare")), medians.get((flat, "floor"))
    for name, row in (("townsquare", ts), ("floor", floor)):
        if row is not None and row["cpu_server_net"] > 0:
            print(
                f"{flat}: {name} spends {row['cpu_server_net']:.1f} ms of CPU per message above"
                f" idle: one core to itself would carry ~{1000 / row['cpu_server_net']:.0f} msg/s"
            )
    if ts is not None and floor is not None:
        ratio = ts["delivered_per_s"] / floor["delivered_per_s"]
        met = "met" if ratio >= RATIO_TARGET else "MISSED"
        print(
            f"{flat}: townsquare {ts['delivered_per_s']:.0f} msg/s delivered = {ratio:.2f}x the"
            f" floor's {floor['delivered_per_s']:.0f} (target >= {RATIO_TARGET:g}x): {met}"
        )
    for r in results:
        if r.failures or r.missing or r.doubled or r.unexpected or r.closes:
            print(
                f"note: {r.server} {r.run} round {r.round}: failures {r.failures}, lost"
                f" {r.missing}, doubled {r.doubled}, unexpected {r.unexpected}, closes {r.closes}"
            )


def print_profile(stats_path: Path, kept: Path, messages: int, cpu: tuple[float, float]) -> None:
    total_cpu, loop_cpu = cpu
    print(
        f"\nprofile: {messages} messages at the fixed rate: {1000 * total_cpu / messages:.2f} ms"
        f" CPU per message, of which the event loop {1000 * loop_cpu / messages:.2f} ms"
        " (the profiler inflates both; the shares hold)"
    )
    kept.parent.mkdir(exist_ok=True)
    shutil.copyfile(stats_path, kept)
    pauses_path = Path(str(stats_path) + ".gc.json")
    if pauses_path.exists():
        pauses: list[list[float]] = json.loads(pauses_path.read_text())
        for generation in (0, 1, 2):
            mine = [seconds for gen, seconds in pauses if gen == generation]
            if mine:
                print(
                    f"garbage collector, generation {generation}: {len(mine)} collections,"
                    f" {1000 * sum(mine):.0f} ms in all, the longest {1000 * max(mine):.1f} ms"
                )
    stats = pstats.Stats(str(kept))
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    print(f"event-loop CPU by package (own time; built-ins counted to their caller), {kept}:")
    for package, seconds in sorted(by_package(stats).items(), key=lambda kv: -kv[1])[:18]:
        print(f"  {100 * seconds / total:5.1f}%  {package}")
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats("townsquare", 30)
