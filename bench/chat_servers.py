"""The servers of the chat benchmark (bench/chat_ws.py): Townsquare as `townsquare serve`
runs it (or under cProfile), and the floor (bench/chat_floor.py), each in its own session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

import cms_data
from media_probe import server_pids

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
SECRET_KEY = "bench-chat-" + "s" * 53
WS_MAX_SIZE = 64 * 1024  # as `townsquare serve` sets it


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

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pids(self) -> list[int]:
        return server_pids(self.process.pid)


def _townsquare_env(target: cms_data.Target, port: int, workdir: Path, pool: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOWNSQUARE_", "FLOOR_"))}
    env.update(
        TOWNSQUARE_ENV="production",
        TOWNSQUARE_DATABASE_URL=target.sqlalchemy_url,
        TOWNSQUARE_SECRET_KEY=SECRET_KEY,
        TOWNSQUARE_RUN_WORKER_IN_PROCESS="false",
        TOWNSQUARE_LOG_LEVEL="WARNING",
        TOWNSQUARE_PUBLIC_URL=f"http://{HOST}:{port}",
        TOWNSQUARE_RATE_LIMIT_ENABLED="false",
        TOWNSQUARE_DATABASE_POOL_SIZE=str(pool),
        TOWNSQUARE_EMAIL_BACKEND="file",
        TOWNSQUARE_EMAIL_FILE_DIR=str(workdir / "mail"),
    )
    env.pop("REDIS_URL", None)
    return env


def _profiled_command(port: int, profile: Path) -> list[str]:
    """`townsquare serve`'s uvicorn call under a cProfile timed by the main thread's CPU
    clock; SIGUSR1 starts it, SIGUSR2 stops and saves it (start-up is left out)."""
    code = (
        "import cProfile, gc, json, os, signal, time, uvicorn\n"
        "profiler = cProfile.Profile(time.thread_time)\n"
        # Collector pauses (wall clock, by generation) while the profiler runs.
        "pauses, began = [], [0.0]\n"
        "def on_gc(phase, info):\n"
        "    if phase == 'start':\n"
        "        began[0] = time.perf_counter()\n"
        "    elif profiling[0]:\n"
        "        pauses.append((info['generation'], time.perf_counter() - began[0]))\n"
        "profiling = [False]\n"
        "gc.callbacks.append(on_gc)\n"
        "def start(*_):\n"
        "    profiling[0] = True\n"
        "    profiler.enable()\n"
        "def save(*_):\n"
        "    profiler.disable()\n"
        "    profiling[0] = False\n"
        f"    open({str(profile) + '.gc.json'!r}, 'w').write(json.dumps(pauses))\n"
        f"    profiler.dump_stats({str(profile) + '.partial'!r})\n"
        f"    os.replace({str(profile) + '.partial'!r}, {str(profile)!r})\n"
        "signal.signal(signal.SIGUSR1, start)\n"
        "signal.signal(signal.SIGUSR2, save)\n"
        f"uvicorn.run('townsquare.main:app_from_env', factory=True, host={HOST!r}, "
        f"port={port}, proxy_headers=True, forwarded_allow_ips={HOST!r}, "
        f"access_log=False, log_level='warning', ws_max_size={WS_MAX_SIZE})\n"
    )
    return [sys.executable, "-c", code]


@contextmanager
def running(
    name: str, target: cms_data.Target, workdir: Path, pool: int, profile: Path | None = None
) -> Iterator[Server]:
    port = _free_port()
    if name == "floor":
        command = [
            *(str(BIN / "uvicorn"), "chat_floor:app", "--app-dir", str(BENCH)),
            *("--host", HOST, "--port", str(port), "--workers", "1"),
            *("--no-access-log", "--log-level", "warning", "--ws-max-size", str(WS_MAX_SIZE)),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNSQUARE_")}
        env.update(FLOOR_DATABASE_URL=target.dsn, FLOOR_POOL_SIZE=str(pool))
    else:
        serve = [str(BIN / "townsquare"), "serve", "--host", HOST, "--port", str(port)]
        command = _profiled_command(port, profile) if profile else [*serve, "--workers", "1"]
        env = _townsquare_env(target, port, workdir, pool)
    log = workdir / f"{name}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, port, process, log)
    try:
        _wait_ready(server, timeout=60)
        yield server
    finally:
        _stop(process)
        # Kept for what the table cannot say (re-checks that failed, sockets closed).
        kept = BENCH / "results" / f"chat_ws-{name}.log"
        kept.parent.mkdir(exist_ok=True)
        kept.write_bytes(log.read_bytes()[-200_000:])


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if httpx.get(server.base_url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
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
