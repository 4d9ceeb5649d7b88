"""The one clock of Townsquare: always timezone-aware UTC, movable in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)
_frozen: datetime | None = None


def now() -> datetime:
    """The current time in UTC, shifted by whatever a test has set."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _offset


def travel(delta: timedelta) -> None:
    """Move the clock by `delta` (tests and benchmarks only)."""
    global _offset, _frozen
    if _frozen is not None:
        _frozen = _frozen + delta
    else:
        _offset += delta


def freeze(at: datetime) -> None:
    """Stop the clock at `at` until `reset()` (tests only)."""
    global _frozen
    _frozen = at if at.tzinfo else at.replace(tzinfo=UTC)


def reset() -> None:
    global _offset, _frozen
    _offset = timedelta(0)
    _frozen = None


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
