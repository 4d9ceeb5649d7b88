"""`townsquare serve` in a subprocess, on a free port, over its own SQLite file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

TOWNSQUARE = Path(sys.executable).with_name("townsquare")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_env(folder: Path, **settings: str) -> dict[str, str]:
    """The environment of a server: nothing inherited from the tests' TOWNSQUARE_* but
    what is asked, a database and media folder of its own, no worker."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOWNSQUARE_")}
    env |= {
        "TOWNSQUARE_ENV": "test",
        "TOWNSQUARE_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'server.db'}",
        "TOWNSQUARE_MEDIA_DIR": str(folder / "media"),
        "TOWNSQUARE_RUN_WORKER_IN_PROCESS": "false",
    }
    env |= {f"TOWNSQUARE_{name}": value for name, value in settings.items()}
    return env


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    base_url: str
    port: int
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def resident_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def output_lines(self) -> list[str]:
        return [
            line
            for path in (self.stdout, self.stderr)
            for line in path.read_text().splitlines()
            if line.strip()
        ]


def _wait_until_serving(server: LiveServer, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError("server exited:\n" + "\n".join(server.output_lines()))
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server did not start:\n" + "\n".join(server.output_lines()))


@contextmanager
def live_server(folder: Path, **settings: str) -> Iterator[LiveServer]:
    """Migrate its database, serve until the block ends, then stop the server (SIGTERM)."""
    env = server_env(folder, **settings)
    subprocess.run(
        [str(TOWNSQUARE), "migrate"], env=env, cwd=folder, check=True, capture_output=True
    )
    port = free_port()
    stdout, stderr = folder / "stdout.log", folder / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [str(TOWNSQUARE), "serve", "--port", str(port)],
            env=env,
            cwd=folder,
            stdout=out,
            stderr=err,
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", port, stdout, stderr)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
