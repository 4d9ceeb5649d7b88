"""The duty runner: sweeps every registered duty on its interval, in the web process
(`RUN_WORKER_IN_PROCESS`) or alone (`townsquare worker`).

Duties run one after another within a sweep, each in its own transactions; one that
raises is logged and tried again after its interval, the others go on. A duty that
handled something is run again at the next sweep (it may have more), one that handled
nothing waits its interval. `signals.request_wakeup()` (this process) or
`signals.notify_workers()` (any process, PostgreSQL) makes the next sweep start now.
Stopping (SIGTERM/SIGINT, or `stop()`) lets the current sweep finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Sequence

from townsquare.config import Settings
from townsquare.db import Database, SessionSource
from townsquare.realtime.bus import create_bus, set_bus
from townsquare.storage.base import Storage
from townsquare.worker import signals
from townsquare.worker.registry import Duty, DutyContext, load_duties

logger = logging.getLogger("townsquare.worker")

ONCE_MAX_ROUNDS = 10_000


def new_worker_id() -> str:
    """host:pid:random, so that leases name the process that holds them."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Runner:
    """Runs `duties` (default: every registered duty) against `db`."""

    def __init__(
        self,
        db: SessionSource,
        settings: Settings,
        *,
        duties: Sequence[Duty] | None = None,
        worker_id: str | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.settings = settings
        self.duties = list(duties) if duties is not None else load_duties()
        self.context = DutyContext(
            db=db,
            settings=settings,
            worker_id=worker_id or new_worker_id(),
            storage_backend=storage,
        )
        self.stopping = False
        self._listener: signals.WakeupListener | None = None

    async def run_duty(self, duty: Duty) -> int | None:
        """Run `duty` once; how many items it handled, or None when it failed."""
        try:
            handled = await duty.fn(self.context)
        except Exception:
            logger.exception("duty failed", extra={"duty": duty.name})
            return None
        if handled:
            logger.debug("duty handled items", extra={"duty": duty.name, "handled": handled})
        return handled

    async def run_once(self, *, drain: bool = True) -> dict[str, int | None]:
        """Run every duty once; with `drain`, again while it keeps handling items.
        Returns the items each duty handled in total (None: it failed)."""
        totals: dict[str, int | None] = {}
        for duty in self.duties:
            total = 0
            for _ in range(ONCE_MAX_ROUNDS if drain else 1):
                handled = await self.run_duty(duty)
                if handled is None:
                    totals[duty.name] = None
                    break
                total += handled
                totals[duty.name] = total
                if not handled or self.stopping:
                    break
        return totals

    async def run(self) -> None:
        """Sweep until `stop()`; the sweep under way when it is called finishes first."""
        loop = asyncio.get_running_loop()
        listener = signals.subscribe()
        self._listener = listener
        if self.stopping:
            listener.event.set()
        # Only a real database gets its own listening connection (not a test's shared one).
        db = self.context.db
        notifications = (
            asyncio.create_task(signals.listen_for_notifications(db.engine))
            if isinstance(db, Database)
            else None
        )
        next_due = {duty.name: loop.time() for duty in self.duties}
        logger.info(
            "worker started",
            extra={"worker_id": self.context.worker_id, "duties": [d.name for d in self.duties]},
        )
        try:
            while not self.stopping:
                for duty in self.duties:
                    if next_due[duty.name] > loop.time():
                        continue
                    handled = await self.run_duty(duty)
                    interval = 0.0 if handled else duty.interval(self.settings)
                    next_due[duty.name] = loop.time() + interval
                if self.stopping:
                    break
                wait = min(next_due.values(), default=loop.time() + 60) - loop.time()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await listener.event.wait()
                all_duties, names = listener.take()
                now = loop.time()
                for name in next_due:
                    if all_duties or name in names:
                        next_due[name] = min(next_due[name], now)
        finally:
            if notifications is not None:
                notifications.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await notifications
            signals.unsubscribe(listener)
            self._listener = None
            logger.info("worker stopped", extra={"worker_id": self.context.worker_id})

    def stop(self) -> None:
        """Ask `run()` to return once the current sweep has finished."""
        self.stopping = True
        if self._listener is not None:
            self._listener.event.set()


class BackgroundWorker:
    """A runner inside the web process, started and stopped by the app's lifespan."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.task = asyncio.create_task(runner.run(), name="townsquare-worker")
        self.task.add_done_callback(_log_crash)

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Let the current sweep finish (up to `grace_seconds`), then cancel it.
        A sweep cut short leaves leased rows that the next worker takes over."""
        self.runner.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), grace_seconds)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("in-process worker crashed", exc_info=task.exception())


def start_background(
    db: SessionSource, settings: Settings, *, storage: Storage | None = None
) -> BackgroundWorker:
    """Start the runner as a task of the running loop (the web process's lifespan)."""
    return BackgroundWorker(Runner(db, settings, storage=storage))


async def run_standalone(settings: Settings, *, once: bool = False) -> int:
    """`townsquare worker`: run until SIGTERM/SIGINT (a second one stops at once), or with
    `once`, sweep every duty until it has nothing left to do. Returns the exit code."""
    database = Database(settings)
    bus = create_bus(settings)
    set_bus(bus)
    if settings.REDIS_URL is None:
        logger.warning(
            "TOWNSQUARE_REDIS_URL is not set: live events from this worker reach no socket"
        )
    runner = Runner(database, settings)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal(signum: int) -> None:
        if runner.stopping and main is not None:
            logger.warning("second signal: stopping now", extra={"signal": signum})
            main.cancel()
            return
        logger.info("stopping after the current sweep", extra={"signal": signum})
        runner.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        if once:
            totals = await runner.run_once(drain=True)
            for name, handled in totals.items():
                logger.info(
                    "duty swept",
                    extra={"duty": name, "handled": handled, "failed": handled is None},
                )
            return 1 if any(handled is None for handled in totals.values()) else 0
        await runner.run()
        return 0
    except asyncio.CancelledError:
        return 130
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if runner.context.storage_backend is not None:
            await runner.context.storage_backend.close()
        await bus.close()
        set_bus(None)
        await database.dispose()
