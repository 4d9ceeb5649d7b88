"""Background duties of events: the reminder emails before each shift."""

from __future__ import annotations

from townsquare.db import transaction
from townsquare.events import reminders
from townsquare.kit import clock
from townsquare.worker.registry import DutyContext, duty

REMINDERS_EVERY_SECONDS = 60


@duty("events.reminders", every_seconds=REMINDERS_EVERY_SECONDS)
async def send_reminders(ctx: DutyContext) -> int:
    """Email every confirmed volunteer whose shift starts within `EVENTS_REMINDER_HOURS`,
    once, one transaction per batch until a batch comes back short."""
    sent = 0
    while True:
        async with transaction(ctx.db) as session:
            queued, claimed = await reminders.send_due_reminders(
                session, now=clock.now(), settings=ctx.settings
            )
        sent += queued
        if claimed < ctx.settings.WORKER_BATCH_SIZE:
            return sent
