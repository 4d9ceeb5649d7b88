"""Background duties of email: delivering the outbox, forgetting old emails."""

from __future__ import annotations

from townsquare.email import delivery
from townsquare.email.service import DELIVER_DUTY
from townsquare.worker.registry import DutyContext, duty


@duty(DELIVER_DUTY)
async def deliver_outbox(ctx: DutyContext) -> int:
    """Claim a batch of due emails, send them, record the outcome of each."""
    return await delivery.deliver_batch(ctx.db, ctx.settings, worker_id=ctx.worker_id)


@duty("email.purge_finished", every_seconds=3600)
async def purge_finished_emails(ctx: DutyContext) -> int:
    """Delete sent and failed emails older than EMAIL_RETENTION_DAYS."""
    return await delivery.purge_finished(ctx.db, ctx.settings)
