"""`townsquare worker` as real OS processes: --once, graceful stop, several workers at once,
a worker killed mid-batch (QUALITY bar 19: every email delivered at least once)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from tests.conftest import TEST_DATABASE_URL, postgres_only
from tests.email.servers import RecordingHandler, SmtpServer
from townsquare.db import Database, transaction
from townsquare.email.models import OutboxEmail
from townsquare.email.service import enqueue_email

TOWNSQUARE = str(Path(sys.executable).parent / "townsquare")


def _worker(smtp: SmtpServer, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TOWNSQUARE, "worker", *args],
        env={
            **os.environ,
            "TOWNSQUARE_DATABASE_URL": TEST_DATABASE_URL,
            "TOWNSQUARE_EMAIL_BACKEND": "smtp",
            "TOWNSQUARE_SMTP_HOST": "127.0.0.1",
            "TOWNSQUARE_SMTP_PORT": str(smtp.port),
            "TOWNSQUARE_LOG_FORMAT": "text",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _enqueue_many(database: Database, count: int) -> list[str]:
    async with transaction(database) as session:
        rows = [
            await enqueue_email(session, to=f"user{i}@example.org", template="test", context={})
            for i in range(count)
        ]
    return [row.message_id for row in rows]


async def _statuses(database: Database) -> Counter[str]:
    async with transaction(database, write=False) as session:
        rows = await session.execute(
            select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)
        )
        return Counter({str(status): count for status, count in rows.all()})


def _handled(log: str) -> int:
    match = re.search(r"duty swept duty=email\.deliver handled=(\d+)", log)
    assert match, log
    return int(match.group(1))


class TestOnce:
    async def test_delivers_everything_due_and_exits(
        self, committed_db: Database, smtp_server: SmtpServer
    ) -> None:
        ids = await _enqueue_many(committed_db, 7)

        worker = _worker(smtp_server, "--once", TOWNSQUARE_WORKER_BATCH_SIZE="3")
        _, stderr = worker.communicate(timeout=60)

        assert worker.returncode == 0, stderr
        assert sorted(smtp_server.handler.message_ids()) == sorted(ids)
        assert _handled(stderr) == 7
        assert await _statuses(committed_db) == Counter({"sent": 7})


class TestGracefulStop:
    async def test_sigterm_stops_worker(
        self, committed_db: Database, smtp_server: SmtpServer
    ) -> None:
        worker = _worker(smtp_server, TOWNSQUARE_WORKER_POLL_INTERVAL_SECONDS="0.2")
        try:
            ids = await _enqueue_many(committed_db, 3)
            smtp_server.wait_for(3)  # it polls, so it finds emails committed elsewhere
            worker.send_signal(signal.SIGTERM)
            _, stderr = worker.communicate(timeout=20)
        finally:
            if worker.poll() is None:
                worker.kill()
        assert worker.returncode == 0, stderr
        assert "worker stopped" in stderr
        assert sorted(smtp_server.handler.message_ids()) == sorted(ids)


class TestCrashedWorker:
    async def test_killed_mid_batch_loses_nothing(self, committed_db: Database) -> None:
        count = 20
        smtp = SmtpServer(RecordingHandler(delay=0.1)).start()
        try:
            ids = await _enqueue_many(committed_db, count)
            lease = {
                "TOWNSQUARE_WORKER_LEASE_SECONDS": "4",
                "TOWNSQUARE_SMTP_TIMEOUT": "1",
                "TOWNSQUARE_EMAIL_SEND_CONCURRENCY": "2",
            }
            doomed = _worker(smtp, TOWNSQUARE_WORKER_BATCH_SIZE="100", **lease)
            try:
                smtp.wait_for(3)
            finally:
                doomed.send_signal(signal.SIGKILL)
                doomed.wait(timeout=10)
            assert doomed.returncode == -signal.SIGKILL
            received_before = len(smtp.messages)
            assert received_before < count
            statuses = await _statuses(committed_db)
            assert statuses["sending"] > 0  # leased to a worker that no longer exists

            started = time.monotonic()
            rescuer = _worker(smtp, TOWNSQUARE_WORKER_POLL_INTERVAL_SECONDS="0.2", **lease)
            try:
                while len(set(smtp.handler.message_ids())) < count:
                    assert time.monotonic() - started < 60, "emails were lost"
                    assert rescuer.poll() is None, rescuer.communicate()[1]
                    time.sleep(0.05)
                while (await _statuses(committed_db))["sent"] < count:
                    assert time.monotonic() - started < 60
                    time.sleep(0.05)
            finally:
                rescuer.send_signal(signal.SIGTERM)
                _, stderr = rescuer.communicate(timeout=20)
            assert rescuer.returncode == 0, stderr
        finally:
            smtp.stop()

        received = Counter(smtp.handler.message_ids())
        assert set(received) == set(ids)
        # Each of the two send lanes records a send before starting the next: only the
        # emails in flight when the worker died can arrive twice.
        assert sum(received.values()) - count <= 2
        assert await _statuses(committed_db) == Counter({"sent": count})


@postgres_only
class TestCrossProcessWakeup:
    async def test_commit_elsewhere_wakes_standalone_worker(
        self, committed_db: Database, smtp_server: SmtpServer, tmp_path: Path
    ) -> None:
        log_path = tmp_path / "worker.log"
        with log_path.open("w") as log:
            worker = subprocess.Popen(
                [TOWNSQUARE, "worker"],
                env={
                    **os.environ,
                    "TOWNSQUARE_DATABASE_URL": TEST_DATABASE_URL,
                    "TOWNSQUARE_EMAIL_BACKEND": "smtp",
                    "TOWNSQUARE_SMTP_HOST": "127.0.0.1",
                    "TOWNSQUARE_SMTP_PORT": str(smtp_server.port),
                    "TOWNSQUARE_LOG_FORMAT": "text",
                    "TOWNSQUARE_WORKER_POLL_INTERVAL_SECONDS": "3600",
                },
                stderr=log,
            )
        try:
            deadline = time.monotonic() + 30
            while "listening for wake-ups" not in log_path.read_text():
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)
            time.sleep(0.3)  # let the start-up sweeps finish: the next one needs a wake-up

            [message_id] = await _enqueue_many(committed_db, 1)
            smtp_server.wait_for(1, timeout=10)  # far sooner than the hour-long poll

            assert smtp_server.handler.message_ids() == [message_id]
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=20)
        assert worker.returncode == 0, log_path.read_text()


@postgres_only
class TestConcurrentWorkers:
    async def test_two_workers_deliver_each_email_exactly_once(
        self, committed_db: Database
    ) -> None:
        count = 500
        smtp = SmtpServer(RecordingHandler(delay=0.005)).start()
        try:
            ids = await _enqueue_many(committed_db, count)
            workers = [_worker(smtp, "--once", TOWNSQUARE_WORKER_BATCH_SIZE="20") for _ in range(2)]
            logs = [w.communicate(timeout=120)[1] for w in workers]
        finally:
            smtp.stop()

        assert [w.returncode for w in workers] == [0, 0], logs
        received = Counter(smtp.handler.message_ids())
        assert set(received) == set(ids)
        assert max(received.values()) == 1
        assert len(smtp.messages) == count
        handled = [_handled(log) for log in logs]
        assert sum(handled) == count
        assert all(h > 0 for h in handled), handled  # both took part
        assert await _statuses(committed_db) == Counter({"sent": count})
