"""Background duties of storage."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, or_, select

from townsquare.db import transaction
from townsquare.kit import clock
from townsquare.storage.models import StorageDeletion
from townsquare.worker.registry import DutyContext, duty

logger = logging.getLogger("townsquare.storage")

RETRY_AFTER = timedelta(minutes=5)
"""A key the store refused to delete is tried again this much later, so that it does not
hold up the rest of the queue."""


@duty("storage.delete_objects", every_seconds=30)
async def delete_objects(ctx: DutyContext) -> int:
    """Remove the objects whose rows are gone (deleted media, expired uploads). A row
    leaves the queue only after its object is deleted, so a crash in between retries."""
    now = clock.now()
    async with transaction(ctx.db) as session:
        queued = (
            await session.scalars(
                select(StorageDeletion)
                .where(or_(StorageDeletion.not_before.is_(None), StorageDeletion.not_before <= now))
                .order_by(StorageDeletion.created_at)
                .limit(ctx.settings.WORKER_BATCH_SIZE)
                .with_for_update(skip_locked=True)
            )
        ).all()
        deleted = []
        for row in queued:
            try:
                await ctx.storage.delete(row.storage_key)
            except Exception:
                logger.exception("deleting a stored object failed", extra={"key": row.storage_key})
                row.not_before = now + RETRY_AFTER
                continue
            deleted.append(row.id)
        if deleted:
            await session.execute(delete(StorageDeletion).where(StorageDeletion.id.in_(deleted)))
    return len(deleted)
