"""Background duties of the media library."""

from __future__ import annotations

from sqlalchemy import select

from townsquare.db import transaction
from townsquare.kit import clock
from townsquare.media.enums import MediaStatus
from townsquare.media.models import MediaItem
from townsquare.media.service import forget_objects, upload_key
from townsquare.media.variants import make_pending_variants
from townsquare.worker.registry import DutyContext, duty


@duty("media.make_variants", every_seconds=5)
async def make_variants(ctx: DutyContext) -> int:
    """Make the preset variants of new images."""
    return await make_pending_variants(
        ctx.db,
        ctx.storage,
        limit=ctx.settings.WORKER_BATCH_SIZE,
        max_pixels=ctx.settings.MEDIA_MAX_IMAGE_PIXELS,
    )


@duty("media.expire_uploads", every_seconds=300)
async def expire_uploads(ctx: DutyContext) -> int:
    """Remove direct uploads that were never completed: the reservation, and whatever was
    sent to the URL (which has expired with it)."""
    async with transaction(ctx.db) as session:
        expired = (
            await session.scalars(
                select(MediaItem)
                .where(
                    MediaItem.status == MediaStatus.pending,
                    MediaItem.upload_expires_at <= clock.now(),
                )
                .limit(ctx.settings.WORKER_BATCH_SIZE)
                .with_for_update(skip_locked=True)
            )
        ).all()
        await forget_objects(
            session, [upload_key(item.organization_id, item.id) for item in expired]
        )
        for item in expired:
            await session.delete(item)
    return len(expired)
