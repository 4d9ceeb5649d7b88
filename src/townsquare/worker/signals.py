"""Waking runners early, after a commit made work due.

- `request_wakeup(*duty_names)` wakes the runners of this process; cheap, and a no-op
  when none runs. Register it for after the commit: `after_commit(session, request_wakeup)`.
- `notify_workers(session, *duty_names)` (PostgreSQL) also wakes standalone workers in
  other processes, when the transaction commits. Without it they find the work at their
  next poll (WORKER_POLL_INTERVAL_SECONDS).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

logger = logging.getLogger("townsquare.worker")


class WakeupListener:
    """What a runner waits on: an event, plus which duties were asked for (empty: all)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self.all_duties = False
        self.duty_names: set[str] = set()

    def _notify(self, names: tuple[str, ...]) -> None:
        if names:
            self.duty_names.update(names)
        else:
            self.all_duties = True
        self.event.set()

    def take(self) -> tuple[bool, set[str]]:
        """The wake-up requests since the last call: (all duties?, named duties)."""
        requested = (self.all_duties, self.duty_names)
        self.all_duties, self.duty_names = False, set()
        self.event.clear()
        return requested


_listeners: set[WakeupListener] = set()
_lock = threading.Lock()


def request_wakeup(*duty_names: str) -> None:
    """Ask every runner of this process to sweep now: the named duties, or all of them."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is listener.loop:
            listener._notify(duty_names)
        elif not listener.loop.is_closed():
            listener.loop.call_soon_threadsafe(listener._notify, duty_names)


def subscribe() -> WakeupListener:
    listener = WakeupListener()
    with _lock:
        _listeners.add(listener)
    return listener


def unsubscribe(listener: WakeupListener) -> None:
    with _lock:
        _listeners.discard(listener)


# --- across processes (PostgreSQL) ------------------------------------------------------

NOTIFY_CHANNEL = "townsquare_worker"
LISTEN_RETRY_SECONDS = 5.0


async def notify_workers(session: AsyncSession, *duty_names: str) -> None:
    """Wake the runners of every process (standalone workers included) once the session's
    transaction commits: a PostgreSQL NOTIFY, which a rollback discards. On SQLite it does
    nothing (one process runs the worker there; pair it with `request_wakeup`)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": NOTIFY_CHANNEL, "payload": ",".join(duty_names)},
    )


async def listen_for_notifications(engine: AsyncEngine) -> None:
    """Turn NOTIFYs from any process into `request_wakeup` calls here, until cancelled;
    reconnects when the connection drops. Only PostgreSQL has this."""
    if engine.dialect.name != "postgresql":
        return

    while True:
        try:
            await _listen_until_disconnected(engine)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("wake-up listener lost its connection; retrying", exc_info=True)
        await asyncio.sleep(LISTEN_RETRY_SECONDS)


def _on_notify(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
    request_wakeup(*[name for name in payload.split(",") if name])


async def _listen_until_disconnected(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        closed = asyncio.Event()
        raw.add_termination_listener(lambda _connection: closed.set())
        await raw.add_listener(NOTIFY_CHANNEL, _on_notify)
        logger.info("listening for wake-ups", extra={"channel": NOTIFY_CHANNEL})
        # Wake-ups sent while nobody listened are found by this sweep.
        request_wakeup()
        try:
            await closed.wait()
        finally:
            if not raw.is_closed():
                await raw.remove_listener(NOTIFY_CHANNEL, _on_notify)
