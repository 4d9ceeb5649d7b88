"""The duty runner: intervals, failures, wake-ups, --once, the in-process worker."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Literal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.email.servers import SmtpServer
from townsquare.db import Database, commit, transaction
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail
from townsquare.email.service import enqueue_email
from townsquare.main import create_app
from townsquare.worker import signals
from townsquare.worker.registry import Duty, DutyContext, load_duties
from townsquare.worker.runner import Runner

WORKER_TASK = "townsquare-worker"


async def _wait_until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def _email_duty() -> Duty:
    [duty] = [d for d in load_duties() if d.name == "email.deliver"]
    return duty


def _worker_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == WORKER_TASK]


class IdleWatch(asyncio.Event):
    """A listener's event that tells when a runner sits down to wait for it: `idle` is set
    while the runner waits (nothing more to sweep before a wake-up or its interval)."""

    def __init__(self) -> None:
        super().__init__()
        self.idle = asyncio.Event()

    async def wait(self) -> Literal[True]:
        self.idle.set()
        try:
            return await super().wait()
        finally:
            self.idle.clear()


@pytest.fixture
def idle_watch(monkeypatch: pytest.MonkeyPatch) -> IdleWatch:
    """The wake-up event of the next runner started, watched."""
    watch = IdleWatch()
    subscribe = signals.subscribe

    def watched_subscribe() -> signals.WakeupListener:
        listener = subscribe()
        listener.event = watch
        return listener

    monkeypatch.setattr(signals, "subscribe", watched_subscribe)
    return watch


class TestRunOnce:
    async def test_failing_duty_does_not_stop_the_others(
        self, db: RolledBackDatabase, caplog: pytest.LogCaptureFixture
    ) -> None:
        calls: list[str] = []

        async def broken(ctx: DutyContext) -> int:
            calls.append("broken")
            raise RuntimeError("boom")

        async def healthy(ctx: DutyContext) -> int:
            calls.append("healthy")
            return 0

        runner = Runner(
            db,
            make_settings(),
            duties=[Duty("a.broken", broken, 10), Duty("b.healthy", healthy, 10)],
        )
        with caplog.at_level(logging.ERROR, logger="townsquare.worker"):
            totals = await runner.run_once()

        assert totals == {"a.broken": None, "b.healthy": 0}
        assert calls == ["broken", "healthy"]
        assert any(r.getMessage() == "duty failed" and r.exc_info for r in caplog.records)

    async def test_drains_backlog_batch_after_batch(
        self, db: RolledBackDatabase, session: AsyncSession, smtp_server: SmtpServer
    ) -> None:
        settings = make_settings(WORKER_BATCH_SIZE=2, **smtp_server.settings())
        for i in range(5):
            await enqueue_email(session, to=f"u{i}@example.org", template="test", context={})
        await session.commit()

        totals = await Runner(db, settings, duties=[_email_duty()]).run_once()

        assert totals == {"email.deliver": 5}
        assert len(smtp_server.messages) == 5

    async def test_every_registered_duty_runs(self, db: RolledBackDatabase) -> None:
        totals = await Runner(db, make_settings()).run_once()
        assert "email.deliver" in totals
        assert "email.purge_finished" in totals
        assert all(handled == 0 for handled in totals.values())


class TestRun:
    async def test_failing_duty_is_retried_and_others_keep_running(
        self, db: RolledBackDatabase
    ) -> None:
        counts = {"broken": 0, "healthy": 0}

        async def broken(ctx: DutyContext) -> int:
            counts["broken"] += 1
            raise RuntimeError("boom")

        async def healthy(ctx: DutyContext) -> int:
            counts["healthy"] += 1
            return 0

        runner = Runner(
            db,
            make_settings(),
            duties=[Duty("broken", broken, 0.02), Duty("healthy", healthy, 0.02)],
        )
        task = asyncio.create_task(runner.run())
        await _wait_until(lambda: counts["healthy"] >= 3 and counts["broken"] >= 3)
        runner.stop()
        await asyncio.wait_for(task, 5)
        assert task.exception() is None

    async def test_commit_wakes_runner_before_interval(
        self, db: RolledBackDatabase, smtp_server: SmtpServer, idle_watch: IdleWatch
    ) -> None:
        settings = make_settings(WORKER_POLL_INTERVAL_SECONDS=3600, **smtp_server.settings())
        sweeps: list[int] = []
        email_duty = _email_duty()

        async def counted(ctx: DutyContext) -> int:
            handled = await email_duty.fn(ctx)
            sweeps.append(handled)
            return handled

        runner = Runner(db, settings, duties=[Duty("email.deliver", counted, None)])
        task = asyncio.create_task(runner.run())
        await _wait_until(lambda: len(sweeps) == 1)  # the first sweep: nothing to do
        await asyncio.wait_for(idle_watch.idle.wait(), 5)
        assert sweeps == [0]

        session = db.session()
        row = await enqueue_email(session, to="ada@example.org", template="test", context={})
        await commit(session)
        await session.close()

        # Woken, it delivers, looks again for more, then goes back to its hour-long wait.
        await _wait_until(lambda: len(sweeps) == 3, timeout=5)
        await asyncio.wait_for(idle_watch.idle.wait(), 5)
        assert sweeps == [0, 1, 0]
        runner.stop()
        await asyncio.wait_for(task, 5)
        assert sweeps == [0, 1, 0]
        assert smtp_server.messages[0]["Message-ID"] == row.message_id

    async def test_stop_lets_current_sweep_finish(self, db: RolledBackDatabase) -> None:
        started, release = asyncio.Event(), asyncio.Event()
        finished: list[bool] = []

        async def slow(ctx: DutyContext) -> int:
            started.set()
            await release.wait()
            finished.append(True)
            return 0

        runner = Runner(db, make_settings(), duties=[Duty("slow", slow, 60)])
        task = asyncio.create_task(runner.run())
        await started.wait()
        runner.stop()
        release.set()  # the sweep goes on after stop(): a cancelled one never gets here
        await asyncio.wait_for(task, 5)
        assert finished == [True]
        assert task.exception() is None


class TestInProcessWorker:
    """The in-process worker runs beside requests, so it needs a real pool: committed_db."""

    async def test_app_lifespan_runs_worker(
        self, committed_db: Database, smtp_server: SmtpServer
    ) -> None:
        settings = make_settings(
            RUN_WORKER_IN_PROCESS=True,
            WORKER_POLL_INTERVAL_SECONDS=3600,
            **smtp_server.settings(),
        )
        app = create_app(settings, database=committed_db)
        async for client in _client_for(app):
            assert (await client.get("/healthz")).status_code == 200
            assert len(_worker_tasks()) == 1
            async with transaction(committed_db) as session:
                row = await enqueue_email(
                    session, to="ada@example.org", template="test", context={}
                )
            await _wait_until(lambda: len(smtp_server.messages) == 1, timeout=5)
            await _wait_until_sent(committed_db, row.id)

        assert smtp_server.messages[0]["Message-ID"] == row.message_id
        assert _worker_tasks() == []

    async def test_no_worker_when_disabled(
        self, committed_db: Database, smtp_server: SmtpServer
    ) -> None:
        settings = make_settings(RUN_WORKER_IN_PROCESS=False, **smtp_server.settings())
        app = create_app(settings, database=committed_db)
        async for client in _client_for(app):
            assert (await client.get("/healthz")).status_code == 200
            # What would deliver the email is absent: no worker task, nobody to wake.
            assert _worker_tasks() == []
            async with transaction(committed_db) as session:
                row = await enqueue_email(
                    session, to="ada@example.org", template="test", context={}
                )
        assert smtp_server.messages == []
        assert await _status(committed_db, row.id) == EmailStatus.pending

        # It waited for a worker, not on a fault: a standalone sweep delivers it.
        await Runner(committed_db, settings, duties=[_email_duty()]).run_once()
        assert [m["Message-ID"] for m in smtp_server.messages] == [row.message_id]


async def _status(database: Database, email_id: uuid.UUID) -> EmailStatus | None:
    async with transaction(database, write=False) as session:
        return await session.scalar(select(OutboxEmail.status).where(OutboxEmail.id == email_id))


async def _wait_until_sent(database: Database, email_id: uuid.UUID) -> None:
    async with asyncio.timeout(5):
        while await _status(database, email_id) != EmailStatus.sent:
            await asyncio.sleep(0.02)
