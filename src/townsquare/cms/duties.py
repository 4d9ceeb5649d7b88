"""Background duties of the CMS."""

from __future__ import annotations

from townsquare.cms import publishing
from townsquare.db import transaction
from townsquare.kit import clock
from townsquare.worker.registry import DutyContext, duty

PUBLISH_SCHEDULED_EVERY_SECONDS = 15


@duty("cms.publish_scheduled", every_seconds=PUBLISH_SCHEDULED_EVERY_SECONDS)
async def publish_scheduled(ctx: DutyContext) -> int:
    """Publish every scheduled article whose time has come (also those that came due
    while no worker ran), one batch per transaction, and say how many."""
    published = 0
    while True:
        async with transaction(ctx.db) as session:
            count = await publishing.publish_due_articles(
                session, now=clock.now(), settings=ctx.settings
            )
        published += count
        if count < ctx.settings.WORKER_BATCH_SIZE:
            return published
