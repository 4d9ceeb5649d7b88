"""Background duties of storage."""

from __future__ import annotations

from sqlalchemy import delete, select

from townsquare.db import transaction
from townsquare.storage.models import StorageDeletion
from townsquare.worker.registry import DutyContext, duty


@duty("storage.delete_objects", every_seconds=30)
async def delete_objects(ctx: DutyContext) -> int:
    """Remove the objects whose rows are gone (deleted media, expired uploads). A row
    leaves the queue only after its object is deleted, so a crash in between retries."""
    async with transaction(ctx.db) as session:
        queued = (
            await session.scalars(
                select(StorageDeletion)
                .order_by(StorageDeletion.created_at)
                .limit(ctx.settings.WORKER_BATCH_SIZE)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in queued:
            await ctx.storage.delete(row.storage_key)
        if queued:
            await session.execute(
                delete(StorageDeletion).where(StorageDeletion.id.in_([row.id for row in queued]))
            )
    return len(queued)
