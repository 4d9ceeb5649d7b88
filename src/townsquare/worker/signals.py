"""Waking the in-process runner early, after a commit made work due.

`request_wakeup` is process-local and cheap; it does nothing when no runner listens
(tests, a web process whose worker runs standalone: those workers poll on their interval).
Register it after the commit, never before: `after_commit(session, request_wakeup)`.
"""

from __future__ import annotations

import asyncio
import threading


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
