"""Scale-out harness: on loopback, 2 `townsquare serve` processes (one uvicorn worker each,
different ports) and 2 `townsquare worker` processes, on one fresh PostgreSQL database
migrated with `townsquare migrate`, the real Redis, moto's S3 server and an aiosmtpd SMTP
server. Tests drive them over HTTP and WebSocket like clients behind a load balancer, and
arrange rows (users, sessions, organizations) straight in the shared database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import IS_POSTGRES, POSTGRES_URL, make_settings
from tests.email.servers import SmtpServer, free_port
from tests.storage.servers import S3Server
from townsquare.config import Settings
from townsquare.db import Database

REDIS_URL = os.environ.get("TOWNSQUARE_TEST_SCALEOUT_REDIS_URL") or "redis://127.0.0.1:6379/10"
SECRET_KEY = "scale-out-harness-secret-key-0123456789abcdef"
PUBLIC_URL = "http://townsquare.test"
START_TIMEOUT = 90.0
TOWNSQUARE = str(Path(sys.executable).with_name("townsquare"))

SCALEOUT = [
    pytest.mark.scaleout,
    pytest.mark.skipif(
        not IS_POSTGRES,
        reason="scale-out needs PostgreSQL (several processes on one database, SKIP LOCKED)",
    ),
]


def _database_url() -> str:
    """A database of its own next to the test database: `<test database>_scaleout`."""
    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL)
    return url.set(database=f"{url.database}_scaleout").render_as_string(hide_password=False)


async def _drop_database(url: str, *, create_again: bool) -> None:
    target = make_url(url)
    engine = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as admin:
            await admin.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            if create_again:
                await admin.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        await engine.dispose()


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to sockets or the database."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self) -> None:
        """Until `/readyz` answers 200 (an API process) or a moment alive (a worker)."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            if self.port is None:
                return
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not get ready:\n{self.log_tail()}")
            time.sleep(0.2)


@dataclass
class Cluster:
    database_url: str
    settings: Settings
    env: dict[str, str]
    smtp: SmtpServer
    s3: S3Server
    bucket: str
    apis: list[Process] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)

    @property
    def a(self) -> Process:
        return self.apis[0]

    @property
    def b(self) -> Process:
        return self.apis[1]

    def restart(self, process: Process) -> None:
        """Start a stopped or killed process again, on the same port."""
        process.stop()
        process.start()
        process.wait_ready()

    def check_alive(self) -> None:
        for process in (*self.apis, *self.workers):
            assert process.alive(), f"{process.name} died:\n{process.log_tail()}"


def _environment(database_url: str, smtp: SmtpServer, s3: S3Server, bucket: str) -> dict[str, str]:
    """Production settings (the README's production list) pointed at the loopback parts."""
    settings: dict[str, object] = {
        "ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "PUBLIC_URL": PUBLIC_URL,
        "DATABASE_URL": database_url,
        "DATABASE_POOL_SIZE": 5,
        "DATABASE_MAX_OVERFLOW": 5,
        "REDIS_URL": REDIS_URL,
        # Behind the load balancer: the client address is its X-Forwarded-For.
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "RUN_WORKER_IN_PROCESS": "false",
        "WORKER_POLL_INTERVAL_SECONDS": 0.5,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        "ARGON2_MEMORY_COST_KIB": 19 * 1024,
        "EMAIL_FROM": "Townsquare <no-reply@townsquare.test>",
        **smtp.settings(),
        **s3.settings(bucket),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNSQUARE_")}
    env.update({f"TOWNSQUARE_{name}": str(value) for name, value in settings.items()})
    return env


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    database_url = _database_url()
    asyncio.run(_drop_database(database_url, create_again=True))
    logs = tmp_path_factory.mktemp("scaleout-logs")
    redis_admin = redis.Redis.from_url(REDIS_URL)
    for key in redis_admin.scan_iter("townsquare:ratelimit*"):
        redis_admin.delete(key)
    redis_admin.close()

    smtp = SmtpServer().start()
    s3 = S3Server().start()
    processes: list[Process] = []
    try:
        bucket = asyncio.run(s3.new_bucket())
        env = _environment(database_url, smtp, s3, bucket)
        migrated = subprocess.run(
            [TOWNSQUARE, "migrate"], env=env, capture_output=True, text=True, timeout=120
        )
        assert migrated.returncode == 0, migrated.stderr
        settings = make_settings(DATABASE_URL=database_url, SECRET_KEY=SECRET_KEY)
        cluster = Cluster(database_url, settings, env, smtp, s3, bucket)
        for name in ("a", "b"):
            port = free_port()
            argv = [TOWNSQUARE, "serve", "--host", "127.0.0.1", "--port", str(port)]
            api = Process(f"api-{name}", [*argv, "--workers", "1"], env, logs / f"api-{name}.log")
            api.port = port
            cluster.apis.append(api)
        for n in (1, 2):
            worker = Process(f"worker-{n}", [TOWNSQUARE, "worker"], env, logs / f"worker-{n}.log")
            cluster.workers.append(worker)
        processes = [*cluster.apis, *cluster.workers]
        for process in processes:
            process.start()
        for process in processes:
            process.wait_ready()
        yield cluster
    finally:
        for process in processes:
            process.stop()
        s3.stop()
        smtp.stop()
        asyncio.run(_drop_database(database_url, create_again=False))


@pytest.fixture(scope="session")
async def shared_db(cluster: Cluster) -> AsyncIterator[Database]:
    """The test's own connection to the cluster's database, for arranging and checking rows."""
    database = Database(cluster.settings)
    try:
        yield database
    finally:
        await database.dispose()
