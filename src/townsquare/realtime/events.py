"""Publishing live events from services: queued on the session, sent after its commit."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.db import after_commit
from townsquare.realtime.bus import get_bus

logger = logging.getLogger("townsquare.realtime")
_PENDING = "realtime_events"


def publish(session: AsyncSession, channel: str, type_: str, data: dict[str, Any]) -> None:
    """Send `{"type": type_, "data": data}` on `channel` once the session commits (never
    if it rolls back). Events of one transaction go out in the order they were queued."""
    queued: _Queued | None = session.info.get(_PENDING)
    # A rollback drops the after-commit callbacks but not this list: start a fresh one.
    if queued is None or queued.send not in session.info.get("after_commit", ()):
        queued = session.info[_PENDING] = _Queued()
        after_commit(session, queued.send)
    queued.events.append((channel, {"type": type_, "data": data}))


class _Queued:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def send(self) -> None:
        events, self.events = self.events, []
        bus = get_bus()
        for channel, event in events:
            try:
                await bus.publish(channel, event)
            except Exception:
                # One event that cannot be sent (not JSON, say) must not hold back the rest.
                logger.exception("live event not published", extra={"channel": channel})


def org_agents_channel(organization_id: object) -> str:
    """Every agent of the organization: all its conversations, internal notes included."""
    return f"org:{organization_id}:support"


def user_channel(user_id: object) -> str:
    """One person: their own conversations as a customer (never internal notes)."""
    return f"user:{user_id}"
