"""Multipart upload throughput and memory: Townsquare next to a bare ASGI floor.

Run (from the repository root):

    make bench-media                          # = .venv/bin/python bench/media_upload.py
    .venv/bin/python bench/media_upload.py --repeat 5 --clients 1,4 --sizes 1,10,50
    .venv/bin/python bench/media_upload.py --profile   # also cProfile Townsquare's event loop

What one run does (every step has a time limit; loopback only):
1. drops and creates the PostgreSQL database (`--url`, default townsquare_bench_media) and
   its schema (`townsquare migrate`, else `Base.metadata.create_all`; bench/cms_data.py);
2. starts Townsquare (`townsquare serve --workers 1`, ENV=production, local storage under a
   temporary TOWNSQUARE_MEDIA_DIR, RUN_WORKER_IN_PROCESS=false so no variant is made during
   the measurement, LOG_LEVEL=WARNING) and the floor (bench/media_floor.py, a bare ASGI app
   writing the file part straight to disk, `uvicorn --workers 1`), side by side;
3. registers a user over HTTP, marks its email verified in the database, creates an org,
   and keeps the session cookie and CSRF token;
4. uploads one file of each size to both servers and checks that each stored exactly the
   bytes sent (the floor cannot win by storing something else);
5. per file (PDFs of `--sizes` MiB: `%PDF-1.4` and random bytes, so no decoder runs; and a
   `--jpeg-mib` photo-like JPEG, which Townsquare decodes whole with Pillow) and per
   `--clients` count: each server in turn (order alternating per round), one warm-up upload
   per client, then `uploads` uploads over keep-alive raw-socket clients (threads, one
   `sendall` of the prebuilt body each); `--repeat` rounds. Stored files are removed
   after each run;
6. records MiB/s (file bytes / wall time), upload latency, the server's CPU per MiB (all its
   threads, from /proc) and its resident memory: VmRSS sampled every 5 ms during the run
   next to the kernel's high-water mark (VmHWM, reset before each run), minus VmRSS before
   the run = growth;
7. prints medians (the highest peak and growth) next to the floor's, with the ratios, and
   saves everything as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import math
import os
import pstats
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

import cms_data
from media_probe import (
    Client,
    RssSampler,
    by_package,
    main_thread_cpu,
    process_cpu,
    server_pids,
)

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
MIB = 1024 * 1024
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/townsquare_bench_media"
RATIO_TARGET = 0.5
GROWTH_TARGET_MIB = 8.0
BOUNDARY = "townsquare-bench-" + "7" * 24
PDF_HEAD = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
ACCOUNT = {"email": "bench-media@example.org", "password": "bench media uploads " + "x" * 12}


# --- servers --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    media_dir: Path
    upload_path: str = "/upload"
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def pids(self) -> list[int]:
        return server_pids(self.process.pid)


def townsquare_env(target: cms_data.Target, port: int, media_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOWNSQUARE_", "FLOOR_"))}
    env.update(
        TOWNSQUARE_ENV="production",
        TOWNSQUARE_DATABASE_URL=target.sqlalchemy_url,
        TOWNSQUARE_SECRET_KEY="bench-" + "m" * 58,
        TOWNSQUARE_RUN_WORKER_IN_PROCESS="false",
        TOWNSQUARE_LOG_LEVEL="WARNING",
        TOWNSQUARE_PUBLIC_URL=f"http://{HOST}:{port}",
        TOWNSQUARE_STORAGE="local",
        TOWNSQUARE_MEDIA_DIR=str(media_dir),
        # Rows stay while their files are removed between runs: the quota must not end it.
        TOWNSQUARE_MEDIA_QUOTA_BYTES_PER_ORG=str(1 << 50),
        TOWNSQUARE_RATE_LIMIT_ENABLED="false",
        TOWNSQUARE_EMAIL_BACKEND="file",
        TOWNSQUARE_EMAIL_FILE_DIR=str(media_dir.parent / "mail"),
    )
    return env


def _townsquare_command(port: int, workers: int, profile: Path | None) -> list[str]:
    if profile is None:
        return [
            *(str(BIN / "townsquare"), "serve", "--host", HOST, "--port", str(port)),
            *("--workers", str(workers)),
        ]
    # The same uvicorn call as `townsquare serve`, with a cProfile timed by the main
    # thread's CPU clock (the event loop's own work, not the threads it waits for) that
    # SIGUSR1 starts and SIGUSR2 stops and saves: start-up is left out.
    code = (
        "import cProfile, os, signal, time, uvicorn\n"
        "profiler = cProfile.Profile(time.thread_time)\n"
        "def save(*_):\n"
        "    profiler.disable()\n"
        f"    profiler.dump_stats({str(profile) + '.partial'!r})\n"
        f"    os.replace({str(profile) + '.partial'!r}, {str(profile)!r})\n"
        "signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())\n"
        "signal.signal(signal.SIGUSR2, save)\n"
        f"uvicorn.run('townsquare.main:app_from_env', factory=True, host={HOST!r}, "
        f"port={port}, proxy_headers=True, forwarded_allow_ips={HOST!r}, "
        "access_log=False, log_level='warning')\n"
    )
    return [sys.executable, "-c", code]


def _floor_command(port: int, workers: int) -> list[str]:
    return [
        *(str(BIN / "uvicorn"), "media_floor:app", "--app-dir", str(BENCH)),
        *("--host", HOST, "--port", str(port), "--workers", str(workers)),
        *("--no-access-log", "--log-level", "warning"),
    ]


@contextmanager
def running(
    name: str,
    target: cms_data.Target,
    workdir: Path,
    workers: int,
    profile: Path | None = None,
) -> Iterator[Server]:
    port = _free_port()
    media_dir = workdir / f"{name}-media"
    media_dir.mkdir(parents=True, exist_ok=True)
    if name == "floor":
        command = _floor_command(port, workers)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNSQUARE_")}
        env["FLOOR_MEDIA_DIR"] = str(media_dir)
    else:
        command = _townsquare_command(port, workers, profile)
        env = townsquare_env(target, port, media_dir)
    log = workdir / f"{name}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, port, process, log, media_dir)
    try:
        _wait_ready(server, timeout=60)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            with Client(server.port, timeout=2) as client:
                status, _, _ = client.request("GET", "/healthz")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    tail = server.log.read_text(errors="replace")[-3000:]
    raise SystemExit(f"{server.name} did not become ready on port {server.port}:\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


def purge(directory: Path) -> None:
    """Remove every stored file (the runs would otherwise fill the disk)."""
    for entry in directory.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _json_request(
    client: Client, method: str, path: str, payload: object, headers: dict[str, str]
) -> tuple[int, dict[str, str], dict[str, object]]:
    status, answered, body = client.request(
        method,
        path,
        {**headers, "Content-Type": "application/json"},
        (json.dumps(payload).encode(),),
    )
    return status, answered, json.loads(body) if body else {}


async def _verify_emails(target: cms_data.Target) -> None:
    conn = await asyncpg.connect(target.dsn, timeout=10)
    try:
        await conn.execute("UPDATE users SET email_verified_at = now()")
    finally:
        await conn.close()


def _session(headers: dict[str, str]) -> dict[str, str]:
    """The session cookie and CSRF token from a sign-in's Set-Cookie headers."""
    cookies = [c.split(";", 1)[0] for c in headers.get("set-cookie", "").split("\n") if c]
    jar = dict(cookie.split("=", 1) for cookie in cookies)
    return {"Cookie": "; ".join(cookies), "X-CSRF-Token": jar.get("csrftoken", "")}


def sign_up(server: Server, target: cms_data.Target) -> None:
    """A verified user with an org: the session cookie, CSRF token and upload path."""
    with Client(server.port, timeout=30) as client:
        account = {**ACCOUNT, "display_name": "Bench Media"}
        status, _, body = _json_request(client, "POST", "/api/v1/auth/register", account, {})
        if status != 202:
            raise SystemExit(f"register answered {status}: {body}")
        status, headers, body = _json_request(client, "POST", "/api/v1/auth/login", ACCOUNT, {})
        if status != 200:
            raise SystemExit(f"login answered {status}: {body}")
        auth = _session(headers)
        asyncio.run(_verify_emails(target))
        status, _, body = _json_request(client, "POST", "/api/v1/orgs", {"name": "Bench"}, auth)
        if status != 201:
            raise SystemExit(f"creating the org answered {status}: {body}")
    server.headers = auth
    server.upload_path = f"/api/v1/orgs/{body['slug']}/media"


def log_in(server: Server, upload_path: str) -> None:
    """Another Townsquare on the same database: sign in with the account made before."""
    with Client(server.port, timeout=30) as client:
        status, headers, body = _json_request(client, "POST", "/api/v1/auth/login", ACCOUNT, {})
        if status != 200:
            raise SystemExit(f"login answered {status}: {body}")
    server.headers = _session(headers)
    server.upload_path = upload_path


# --- payloads ---------------------------------------------------------------------------------


@dataclass
class Payload:
    label: str
    filename: str
    content_type: str
    data: bytes

    @property
    def mib(self) -> float:
        return len(self.data) / MIB

    def body(self) -> tuple[bytes, bytes, bytes]:
        head = (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{self.filename}"\r\n'
            f"Content-Type: {self.content_type}\r\n\r\n"
        ).encode()
        return head, self.data, f"\r\n--{BOUNDARY}--\r\n".encode()


def pdf_payload(mib: float, seed: int) -> Payload:
    size = int(mib * MIB)
    tail = b"\n%%EOF\n"
    data = PDF_HEAD + random.Random(seed).randbytes(size - len(PDF_HEAD) - len(tail)) + tail
    return Payload(f"PDF {mib:g} MiB", "bench.pdf", "application/pdf", data)


def jpeg_payload(mib: float, cache: Path) -> Payload:
    """A photo-like JPEG (24 MP of gradients and noise at quality 92, like a camera's
    10 MiB file): its cost is Pillow decoding every pixel. Cached, it takes a while."""
    sigma = 28.0 * mib / 10
    path = cache / f"media_upload_photo_{sigma:.1f}.jpg"
    if not path.exists():
        from PIL import Image

        print(f"making a ~{mib:g} MiB photo-like JPEG (6000x4000; cached in {path})")
        width, height = 6000, 4000
        gradient = Image.linear_gradient("L")
        channels = [
            Image.blend(
                Image.effect_noise((width, height), sigma),
                gradient.rotate(90 * i).resize((width, height)),
                0.5,
            )
            for i in range(3)
        ]
        out = io.BytesIO()
        Image.merge("RGB", channels).save(out, "JPEG", quality=92)
        cache.mkdir(parents=True, exist_ok=True)
        path.write_bytes(out.getvalue())
    data = path.read_bytes()
    return Payload(f"JPEG {len(data) / MIB:.1f} MiB", "photo.jpg", "image/jpeg", data)


def check_stored(server: Server, payload: Payload) -> None:
    """One upload, then the one file in the server's media folder holds exactly its bytes."""
    purge(server.media_dir)
    with Client(server.port) as client:
        status, _, answer = client.request(
            "POST", server.upload_path, _upload_headers(server), payload.body()
        )
    if status != 201:
        raise SystemExit(f"{server.name}: {payload.label} answered {status}: {answer[:300]!r}")
    stored = [
        p
        for p in server.media_dir.rglob("*")
        if p.is_file() and not p.name.endswith(".content-type")
    ]
    want = hashlib.sha256(payload.data).hexdigest()
    got = [hashlib.sha256(p.read_bytes()).hexdigest() for p in stored]
    if got != [want]:
        raise SystemExit(f"{server.name} stored {len(stored)} file(s), not the bytes it was sent")
    purge(server.media_dir)


def _upload_headers(server: Server) -> dict[str, str]:
    return {**server.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


# --- one measured run -----------------------------------------------------------------------


@dataclass
class Run:
    server: str
    payload: str
    clients: int
    uploads: int
    seconds: float
    mib_per_s: float
    p50_s: float
    max_s: float
    cpu_ms_per_mib: float
    loop_cpu_ms_per_mib: float
    rss_before_mib: float
    rss_peak_mib: float
    rss_growth_mib: float
    rss_samples: int
    errors: int


def _uploads(server: Server, payload: Payload, clients: int, count: int) -> list[float]:
    body = payload.body()
    headers = _upload_headers(server)
    todo = iter(range(count))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []

    def work() -> None:
        with Client(server.port) as client:
            while True:
                with lock:
                    if next(todo, None) is None:
                        return
                started = time.perf_counter()
                try:
                    status, _, answer = client.request("POST", server.upload_path, headers, body)
                except OSError as exc:
                    client.close()
                    failures.append(repr(exc))
                    continue
                if status != 201 or json.loads(answer)["size"] != len(payload.data):
                    failures.append(f"{status} {answer[:200]!r}")
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        print(f"  {server.name}: {len(failures)} failed uploads, first: {failures[0]}")
    return latencies + [math.nan] * len(failures)


def measure(server: Server, payload: Payload, warmup: Payload, clients: int, count: int) -> Run:
    _uploads(server, warmup, clients, clients)
    purge(server.media_dir)
    pids = server.pids
    cpu_before = sum(process_cpu(pid) for pid in pids)
    loop_before = sum(main_thread_cpu(pid) for pid in pids)
    started = time.perf_counter()
    with RssSampler(pids) as rss:
        latencies = _uploads(server, payload, clients, count)
    seconds = time.perf_counter() - started
    cpu = sum(process_cpu(pid) for pid in pids) - cpu_before
    loop = sum(main_thread_cpu(pid) for pid in pids) - loop_before
    purge(server.media_dir)
    done = [t for t in latencies if not math.isnan(t)]
    mib = payload.mib * len(done)
    return Run(
        server=server.name,
        payload=payload.label,
        clients=clients,
        uploads=count,
        seconds=seconds,
        mib_per_s=mib / seconds,
        p50_s=statistics.median(done) if done else math.nan,
        max_s=max(done, default=math.nan),
        cpu_ms_per_mib=1000 * cpu / mib if mib else math.nan,
        loop_cpu_ms_per_mib=1000 * loop / mib if mib else math.nan,
        rss_before_mib=rss.before_kib / 1024,
        rss_peak_mib=rss.peak_kib / 1024,
        rss_growth_mib=(rss.peak_kib - rss.before_kib) / 1024,
        rss_samples=rss.samples,
        errors=len(latencies) - len(done),
    )


# --- report ---------------------------------------------------------------------------------


@dataclass
class Row:
    payload: str
    mib: float
    clients: int
    uploads: int
    by_server: dict[str, dict[str, float]]


def summarize(runs: list[Run], payload: Payload, clients: int) -> Row:
    by_server: dict[str, dict[str, float]] = {}
    mine = [r for r in runs if r.payload == payload.label and r.clients == clients]
    for name in ("townsquare", "floor"):
        found = [r for r in mine if r.server == name]
        by_server[name] = {
            "mib_per_s": statistics.median(r.mib_per_s for r in found),
            "p50_s": statistics.median(r.p50_s for r in found),
            "cpu_ms_per_mib": statistics.median(r.cpu_ms_per_mib for r in found),
            "loop_cpu_ms_per_mib": statistics.median(r.loop_cpu_ms_per_mib for r in found),
            "rss_peak_mib": max(r.rss_peak_mib for r in found),
            "rss_growth_mib": max(r.rss_growth_mib for r in found),
            "errors": sum(r.errors for r in found),
        }
    return Row(payload.label, payload.mib, clients, mine[0].uploads, by_server)


HEADER = (
    "                          | townsquare                            "
    "| floor                                 | / floor\n"
    "file              n conns |  MiB/s  p50 s cpu/MiB  loop  peak  +RSS "
    "|  MiB/s  p50 s cpu/MiB  loop  peak  +RSS | MiB/s  cpu"
)


def _cells(found: dict[str, float]) -> str:
    return (
        f"{found['mib_per_s']:7.1f} {found['p50_s']:6.2f} {found['cpu_ms_per_mib']:7.1f}"
        f" {found['loop_cpu_ms_per_mib']:5.1f} {found['rss_peak_mib']:5.0f}"
        f" {found['rss_growth_mib']:5.1f}"
    )


def print_table(rows: list[Row]) -> None:
    print()
    print(HEADER)
    print("-" * len(HEADER.splitlines()[1]))
    for row in rows:
        ts, floor = row.by_server["townsquare"], row.by_server["floor"]
        ratio = ts["mib_per_s"] / floor["mib_per_s"]
        cpu = ts["cpu_ms_per_mib"] / floor["cpu_ms_per_mib"]
        print(
            f"{row.payload:<16} {row.uploads:3d} {row.clients:5d} | {_cells(ts)} "
            f"| {_cells(floor)} | {ratio:5.2f} {cpu:4.1f}"
        )
    print(
        "\nMiB/s: file bytes / wall time. cpu/MiB, loop: CPU ms per MiB of the server process"
        "\n(all threads) and of its event-loop thread alone. peak: highest RSS (MiB) during a"
        "\nrun; +RSS: peak - RSS at the run's start. Medians of the rounds; peak, +RSS: highest."
    )
    for row in rows:
        ts, floor = row.by_server["townsquare"], row.by_server["floor"]
        verdicts = []
        if ts["mib_per_s"] < RATIO_TARGET * floor["mib_per_s"]:
            verdicts.append(f"below {RATIO_TARGET}x the floor's MiB/s")
        if row.payload.startswith("PDF") and ts["rss_growth_mib"] > GROWTH_TARGET_MIB:
            verdicts.append(f"memory grew {ts['rss_growth_mib']:.1f} MiB")
        if ts["errors"] or floor["errors"]:
            verdicts.append(f"{int(ts['errors'] + floor['errors'])} failed uploads")
        if verdicts:
            print(f"miss: {row.payload}, {row.clients} clients: " + "; ".join(verdicts))
    for line in fixed_and_per_mib(rows):
        print(line)


def fixed_and_per_mib(rows: list[Row]) -> list[str]:
    """CPU per upload as `fixed + per MiB x size`, fitted over the PDF sizes: what a
    request costs whatever its size, apart from what its bytes cost."""
    lines = []
    for clients in sorted({row.clients for row in rows}):
        pdfs = [r for r in rows if r.clients == clients and r.payload.startswith("PDF")]
        if len({r.mib for r in pdfs}) < 2:
            continue
        for name in ("townsquare", "floor"):
            points = [(r.mib, r.mib * r.by_server[name]["cpu_ms_per_mib"]) for r in pdfs]
            fit = statistics.linear_regression([x for x, _ in points], [y for _, y in points])
            lines.append(
                f"{clients} client(s), {name:<10}: CPU per upload ~ {fit.intercept:5.1f} ms"
                f" + {fit.slope:4.2f} ms per MiB"
            )
    return lines


# --- profile ----------------------------------------------------------------------------------


def profile_townsquare(
    target: cms_data.Target,
    workdir: Path,
    upload_path: str,
    payload: Payload,
    clients: int,
    count: int,
) -> None:
    """cProfile (main-thread CPU clock) of a Townsquare process while it takes `count`
    uploads of `payload`; prints the functions that cost the event loop most."""
    stats_path = workdir / "townsquare.prof"
    with running("townsquare-profiled", target, workdir, 1, profile=stats_path) as server:
        log_in(server, upload_path)
        pid = server.process.pid
        _uploads(server, payload, clients, clients)
        cpu_before, loop_before = process_cpu(pid), main_thread_cpu(pid)
        os.kill(pid, signal.SIGUSR1)
        _uploads(server, payload, clients, count)
        os.kill(pid, signal.SIGUSR2)
        cpu = process_cpu(pid) - cpu_before
        loop = main_thread_cpu(pid) - loop_before
        deadline = time.monotonic() + 30
        while not stats_path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        purge(server.media_dir)
    mib = payload.mib * count
    print(
        f"\nprofile: {count} x {payload.label}, {clients} clients: {1000 * cpu / mib:.1f} ms"
        f" CPU per MiB, of which the event loop {1000 * loop / mib:.1f} ms (threads: the rest)"
    )
    kept = BENCH / "results" / "media_upload.prof"
    kept.parent.mkdir(exist_ok=True)
    shutil.copyfile(stats_path, kept)
    stats = pstats.Stats(str(kept))
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    print(f"event-loop CPU by package (own time; built-ins counted to their caller), {kept}:")
    for package, seconds in sorted(by_package(stats).items(), key=lambda kv: -kv[1])[:16]:
        print(f"  {100 * seconds / total:5.1f}%  {package}")
    stats.sort_stats("tottime").print_stats(20)


# --- main -------------------------------------------------------------------------------------


def _sizes(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL database (recreated)")
    parser.add_argument("--sizes", default="1,10,50", help="PDF sizes in MiB")
    parser.add_argument("--jpeg-mib", type=float, default=10.0, help="JPEG size, 0 for none")
    parser.add_argument("--clients", default="1,4", help="concurrent clients, comma-separated")
    parser.add_argument(
        "--volume", type=float, default=160.0, help="MiB uploaded per run (n = volume / size)"
    )
    parser.add_argument("--min-uploads", type=int, default=8, help="at least this many per run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, servers alternating")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn processes per server")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--profile",
        type=float,
        default=0,
        metavar="MIB",
        help="afterwards, cProfile a Townsquare taking 200 MiB of PDFs of this size",
    )
    return parser.parse_args()


async def _drop(target: cms_data.Target) -> None:
    conn = await asyncpg.connect(target.maintenance_dsn, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{target.name}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> None:
    args = parse_args()
    target = cms_data.Target.parse(args.url)
    asyncio.run(cms_data.recreate_database(target))
    asyncio.run(cms_data.create_schema(target))
    payloads = [pdf_payload(mib, args.seed) for mib in _sizes(args.sizes)]
    if args.jpeg_mib:
        payloads.append(jpeg_payload(args.jpeg_mib, BENCH / "results"))
    warmup = pdf_payload(1, args.seed + 1)
    runs: list[Run] = []
    started = datetime.now(UTC)
    try:
        with tempfile.TemporaryDirectory(prefix="townsquare-bench-media-") as tmp:
            workdir = Path(tmp)
            with (
                running("townsquare", target, workdir, args.workers) as townsquare,
                running("floor", target, workdir, args.workers) as floor,
            ):
                sign_up(townsquare, target)
                for payload in payloads:
                    for server in (townsquare, floor):
                        check_stored(server, payload)
                print("both servers store exactly the bytes sent")
                for payload in payloads:
                    count = max(args.min_uploads, math.ceil(args.volume / payload.mib))
                    for clients in _counts(args.clients):
                        for round_ in range(args.repeat):
                            order = (townsquare, floor) if round_ % 2 == 0 else (floor, townsquare)
                            for server in order:
                                run = measure(server, payload, warmup, clients, count)
                                runs.append(run)
                                print(
                                    f"  {run.payload:<14} c={clients} {server.name:<10}"
                                    f" {run.mib_per_s:7.1f} MiB/s"
                                    f"  peak {run.rss_peak_mib:5.0f} MiB"
                                    f" (+{run.rss_growth_mib:.1f})"
                                )
            rows = [
                summarize(runs, payload, clients)
                for payload in payloads
                for clients in _counts(args.clients)
            ]
            print_table(rows)
            if args.profile:
                sample = pdf_payload(args.profile, args.seed)
                count = max(8, math.ceil(200 / sample.mib))
                profile_townsquare(target, workdir, townsquare.upload_path, sample, 4, count)
    finally:
        if not args.keep:
            asyncio.run(_drop(target))
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    out = results / f"media_upload-{started:%Y%m%dT%H%M%SZ}.json"
    out.write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "args": vars(args),
                "cpus": os.cpu_count(),
                "runs": [asdict(r) for r in runs],
                "rows": [asdict(r) for r in rows],
            },
            indent=2,
        )
    )
    print(f"\nsaved {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
