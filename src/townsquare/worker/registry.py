"""The registry of background duties.

A duty is an idempotent sweep of durable state (deliver due outbox emails, publish
articles whose time has come, delete expired tokens). It claims the rows it works on, so
any number of workers may run it at once, and returns how many items it handled. Register
one with `@duty(...)` in the domain's `duties.py` and list that module in `DUTY_MODULES`:

    @duty("cms.publish_scheduled", every_seconds=30)
    async def publish_scheduled(ctx: DutyContext) -> int:
        async with transaction(ctx.db) as session:
            ...
        return published
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from townsquare.config import Settings
from townsquare.db import SessionSource
from townsquare.storage.base import Storage
from townsquare.storage.factory import create_storage

DUTY_MODULES: tuple[str, ...] = (
    "townsquare.auth.duties",
    "townsquare.cms.duties",
    "townsquare.email.duties",
    "townsquare.events.duties",
    "townsquare.media.duties",
    "townsquare.storage.duties",
    "townsquare.support.duties",
)
"""Modules imported by the runner so that their `@duty` decorators register."""


@dataclass(frozen=True)
class DutyContext:
    """What a duty runs with: a session source, the settings, the worker's id, and the
    file storage (the app's own in-process; made from the settings on first use else)."""

    db: SessionSource
    settings: Settings
    worker_id: str
    storage_backend: Storage | None = None

    @property
    def storage(self) -> Storage:
        if self.storage_backend is None:
            object.__setattr__(self, "storage_backend", create_storage(self.settings))
        assert self.storage_backend is not None
        return self.storage_backend


DutyFn = Callable[[DutyContext], Awaitable[int]]


@dataclass(frozen=True)
class Duty:
    name: str
    fn: DutyFn
    every_seconds: float | None
    """Seconds between sweeps; None means the `WORKER_POLL_INTERVAL_SECONDS` setting."""

    def interval(self, settings: Settings) -> float:
        if self.every_seconds is None:
            return settings.WORKER_POLL_INTERVAL_SECONDS
        return self.every_seconds


_DUTIES: dict[str, Duty] = {}


def duty(name: str, *, every_seconds: float | None = None) -> Callable[[DutyFn], DutyFn]:
    """Register the decorated coroutine as the duty `name`, swept every `every_seconds`
    (default: the `WORKER_POLL_INTERVAL_SECONDS` setting)."""
    if every_seconds is not None and every_seconds <= 0:
        raise ValueError("every_seconds must be positive")

    def register(fn: DutyFn) -> DutyFn:
        existing = _DUTIES.get(name)
        if existing is not None and existing.fn is not fn:
            raise ValueError(f"duty {name!r} is registered twice")
        _DUTIES[name] = Duty(name=name, fn=fn, every_seconds=every_seconds)
        return fn

    return register


def unregister(name: str) -> None:
    """Forget the duty `name` (tests that register throwaway duties)."""
    _DUTIES.pop(name, None)


def load_duties() -> list[Duty]:
    """Import every module of `DUTY_MODULES` and return all registered duties, by name."""
    for module in DUTY_MODULES:
        importlib.import_module(module)
    return [_DUTIES[name] for name in sorted(_DUTIES)]


def registered_duties() -> list[Duty]:
    """The duties registered so far (without importing anything), by name."""
    return [_DUTIES[name] for name in sorted(_DUTIES)]
