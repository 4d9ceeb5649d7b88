"""Image variants: resized WebP copies in a fixed set of widths, without metadata, never
larger than the original. Made by the `media.make_variants` duty, outside any request."""

from __future__ import annotations

import io
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import anyio
from PIL import Image, ImageOps
from sqlalchemy import or_, select

from townsquare.db import SessionSource, transaction
from townsquare.kit import clock
from townsquare.media.enums import VariantsStatus
from townsquare.media.models import MediaItem, MediaVariant
from townsquare.media.service import forget_objects, variant_key
from townsquare.storage.base import Storage, stream_bytes
from townsquare.storage.files import local_file

logger = logging.getLogger("townsquare.media")

PRESET_WIDTHS: dict[str, int] = {"w320": 320, "w960": 960, "w1920": 1920}
"""The only sizes there are; clients cannot ask for others."""
VARIANT_TYPE = "image/webp"
MAX_ATTEMPTS = 3
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class MadeVariant:
    name: str
    width: int
    height: int
    data: bytes


def make_variants(path: Path, max_pixels: int) -> list[MadeVariant]:
    """Every preset narrower than the image, as WebP without EXIF, GPS or ICC metadata."""
    made: list[MadeVariant] = []
    with Image.open(path) as original:
        if original.width * original.height > max_pixels:
            return made
        image = ImageOps.exif_transpose(original)
        has_alpha = image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        for name, width in PRESET_WIDTHS.items():
            if width >= image.width:
                continue
            height = max(1, round(image.height * width / image.width))
            resized = image.resize((width, height), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            resized.save(out, "WEBP", quality=82, method=4)
            made.append(MadeVariant(name=name, width=width, height=height, data=out.getvalue()))
    return made


async def _claim(db: SessionSource, limit: int) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    now = clock.now()
    async with transaction(db) as session:
        items = (
            await session.scalars(
                select(MediaItem)
                .where(
                    MediaItem.variants_status == VariantsStatus.pending,
                    or_(
                        MediaItem.variants_locked_until.is_(None),
                        MediaItem.variants_locked_until < now,
                    ),
                )
                .order_by(MediaItem.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for item in items:
            item.variants_locked_until = now + LEASE
            item.variants_attempts += 1
        return [(item.id, item.organization_id, item.storage_key) for item in items]


async def _one(
    db: SessionSource, storage: Storage, max_pixels: int, claimed: tuple[uuid.UUID, uuid.UUID, str]
) -> None:
    media_id, organization_id, key = claimed
    async with local_file(storage, key) as path:
        made = await anyio.to_thread.run_sync(make_variants, path, max_pixels)
    stored: list[tuple[MadeVariant, str]] = []
    for variant in made:
        variant_storage_key = variant_key(organization_id, media_id, variant.name)
        await storage.put(
            variant_storage_key, stream_bytes(variant.data), content_type=VARIANT_TYPE
        )
        stored.append((variant, variant_storage_key))
    async with transaction(db) as session:
        item = await session.get(MediaItem, media_id, with_for_update=True)
        if item is None:
            # Deleted while the variants were made: their objects go too.
            await forget_objects(session, [k for _, k in stored])
            return
        existing = set(
            await session.scalars(
                select(MediaVariant.name).where(MediaVariant.media_id == media_id)
            )
        )
        session.add_all(
            MediaVariant(
                media_id=media_id,
                organization_id=organization_id,
                name=variant.name,
                storage_key=variant_storage_key,
                content_type=VARIANT_TYPE,
                width=variant.width,
                height=variant.height,
                size=len(variant.data),
            )
            for variant, variant_storage_key in stored
            if variant.name not in existing
        )
        item.variants_status = VariantsStatus.done
        item.variants_locked_until = None


async def make_pending_variants(
    db: SessionSource, storage: Storage, *, limit: int, max_pixels: int
) -> int:
    """Make the variants of up to `limit` images that still need them; an image that keeps
    failing is marked `failed` after `MAX_ATTEMPTS` sweeps."""
    done = 0
    for claimed in await _claim(db, limit):
        try:
            await _one(db, storage, max_pixels, claimed)
            done += 1
        except Exception:
            logger.exception("making variants failed", extra={"media_id": str(claimed[0])})
            async with transaction(db) as session:
                item = await session.get(MediaItem, claimed[0])
                if item is not None and item.variants_attempts >= MAX_ATTEMPTS:
                    item.variants_status = VariantsStatus.failed
    return done
