"""Background duties of the support chat: email notices of unread replies, auto-resolve."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.config import Settings
from townsquare.db import transaction
from townsquare.kit import clock
from townsquare.support import auto_resolve, notices
from townsquare.worker.registry import DutyContext, duty

EMAIL_NOTICES_EVERY_SECONDS = 15
AUTO_RESOLVE_EVERY_SECONDS = 300


class _Batch(Protocol):
    def __call__(
        self, session: AsyncSession, *, now: datetime, settings: Settings
    ) -> Awaitable[int]: ...


async def _in_batches(ctx: DutyContext, batch: _Batch) -> int:
    """Run `batch` one transaction at a time until it handles less than a full batch."""
    handled = 0
    while True:
        async with transaction(ctx.db) as session:
            count = await batch(session, now=clock.now(), settings=ctx.settings)
        handled += count
        if count < ctx.settings.WORKER_BATCH_SIZE:
            return handled


@duty("support.email_notices", every_seconds=EMAIL_NOTICES_EVERY_SECONDS)
async def email_notices(ctx: DutyContext) -> int:
    """Email each customer the agent replies they left unread past the notice delay."""
    return await _in_batches(ctx, notices.send_due_notices)


@duty("support.auto_resolve", every_seconds=AUTO_RESOLVE_EVERY_SECONDS)
async def resolve_waiting(ctx: DutyContext) -> int:
    """Resolve conversations that waited on their customer `SUPPORT_AUTO_RESOLVE_HOURS`."""
    if ctx.settings.SUPPORT_AUTO_RESOLVE_HOURS <= 0:
        return 0
    return await _in_batches(ctx, auto_resolve.resolve_waiting)
