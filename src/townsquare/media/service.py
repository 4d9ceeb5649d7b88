"""The media library: listing, reading, editing and deleting media items, their download
URLs and the organization's quota. Uploads are in `media/uploads.py`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.cms.models import Article
from townsquare.config import Settings
from townsquare.kit import clock
from townsquare.kit.pagination import PageParams, paginate
from townsquare.media import inspect
from townsquare.media.enums import MediaStatus
from townsquare.media.errors import MediaInUse, MediaNotFound
from townsquare.media.filenames import content_disposition
from townsquare.media.models import MediaItem, MediaVariant
from townsquare.media.schemas import Media, Variant
from townsquare.orgs.context import OrgContext
from townsquare.orgs.models import Organization
from townsquare.storage.base import DownloadOptions, Storage
from townsquare.storage.models import StorageDeletion


def original_key(
    organization_id: uuid.UUID, media_id: uuid.UUID, *, attempt: str | None = None
) -> str:
    """Keys are made here, never from a client's filename. A completed direct upload is
    moved to a key of its own attempt, so that two racing completes never share one."""
    name = "original" if attempt is None else f"original-{attempt}"
    return f"orgs/{organization_id}/media/{media_id}/{name}"


def upload_key(organization_id: uuid.UUID, media_id: uuid.UUID) -> str:
    """Where a direct upload's URL writes; never what the library serves."""
    return f"orgs/{organization_id}/media/{media_id}/upload"


def variant_key(organization_id: uuid.UUID, media_id: uuid.UUID, name: str) -> str:
    return f"orgs/{organization_id}/media/{media_id}/{name}.webp"


async def lock_organization(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """Serialize quota decisions of one organization (uploads racing for its last bytes)."""
    await session.execute(
        select(Organization.id)
        .where(Organization.id == organization_id)
        .with_for_update(key_share=True)
    )


async def bytes_used(
    session: AsyncSession, organization_id: uuid.UUID, *, excluding: uuid.UUID | None = None
) -> int:
    """Bytes the organization's files take, pending uploads counted at their reservation."""
    statement = select(func.coalesce(func.sum(MediaItem.size), 0)).where(
        MediaItem.organization_id == organization_id
    )
    if excluding is not None:
        statement = statement.where(MediaItem.id != excluding)
    return int(await session.scalar(statement) or 0)


async def get_media(
    session: AsyncSession, ctx: OrgContext, media_id: uuid.UUID, *, for_update: bool = False
) -> MediaItem:
    """The organization's ready media item, or 404 `media_not_found`."""
    statement = select(MediaItem).where(
        MediaItem.id == media_id,
        MediaItem.organization_id == ctx.org.id,
        MediaItem.status == MediaStatus.ready,
    )
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    item = await session.scalar(statement)
    if item is None:
        raise MediaNotFound()
    return item


async def list_media(
    session: AsyncSession, ctx: OrgContext, params: PageParams, *, kind: str | None = None
) -> tuple[list[MediaItem], int]:
    """One page of the organization's ready files, newest first; `kind` is `image`,
    `video` or `application` (PDF)."""
    statement = (
        select(MediaItem)
        .where(MediaItem.organization_id == ctx.org.id, MediaItem.status == MediaStatus.ready)
        .order_by(MediaItem.created_at.desc(), MediaItem.id.desc())
    )
    if kind:
        statement = statement.where(MediaItem.content_type.startswith(f"{kind}/"))
    return await paginate(session, statement, params)


async def update_media(
    session: AsyncSession, ctx: OrgContext, media_id: uuid.UUID, changes: dict[str, str]
) -> MediaItem:
    """Change alt text or title."""
    item = await get_media(session, ctx, media_id, for_update=True)
    for field in ("alt", "title"):
        if field in changes and changes[field] != getattr(item, field):
            setattr(item, field, changes[field])
    await session.flush()
    return item


async def delete_media(session: AsyncSession, ctx: OrgContext, media_id: uuid.UUID) -> None:
    """Delete the item now and its stored objects by the `storage.delete_objects` duty. An
    item that articles feature answers 409 `media_in_use` (naming how many)."""
    item = await get_media(session, ctx, media_id, for_update=True)
    featured = int(
        await session.scalar(
            select(func.count()).select_from(Article).where(Article.featured_media_id == item.id)
        )
        or 0
    )
    if featured:
        raise MediaInUse(extra={"articles": featured})
    keys = [
        item.storage_key,
        *await session.scalars(
            select(MediaVariant.storage_key).where(MediaVariant.media_id == item.id)
        ),
    ]
    await forget_objects(session, keys)
    await session.delete(item)
    await session.flush()


async def forget_objects(
    session: AsyncSession, keys: Sequence[str], *, not_before: datetime | None = None
) -> None:
    """Queue stored objects for removal in the caller's transaction (not before
    `not_before`, for keys an upload URL may still write to)."""
    session.add_all(StorageDeletion(storage_key=key, not_before=not_before) for key in keys)
    await session.flush()


async def forget_organization(session: AsyncSession, organization_id: uuid.UUID) -> int:
    """Queue every stored object of the organization's media for removal, in the caller's
    transaction; called before the organization is deleted, since its rows then go by
    cascade and nothing would remember the objects. Returns how many keys were queued."""
    items = (
        await session.execute(
            select(
                MediaItem.id, MediaItem.status, MediaItem.storage_key, MediaItem.upload_expires_at
            ).where(MediaItem.organization_id == organization_id)
        )
    ).all()
    variant_keys = list(
        await session.scalars(
            select(MediaVariant.storage_key).where(MediaVariant.organization_id == organization_id)
        )
    )
    queued = [StorageDeletion(storage_key=key) for key in variant_keys]
    for media_id, status, key, url_expires_at in items:
        if status == MediaStatus.ready:
            queued.append(StorageDeletion(storage_key=key))
        else:  # what its upload URL may still write, once that has expired
            queued.append(
                StorageDeletion(
                    storage_key=upload_key(organization_id, media_id), not_before=url_expires_at
                )
            )
    session.add_all(queued)
    await session.flush()
    return len(queued)


async def ensure_featurable(
    session: AsyncSession, organization_id: uuid.UUID, media_id: uuid.UUID
) -> bool:
    """Whether `media_id` is a ready media item of the organization (for articles)."""
    found = await session.scalar(
        select(MediaItem.id).where(
            MediaItem.id == media_id,
            MediaItem.organization_id == organization_id,
            MediaItem.status == MediaStatus.ready,
        )
    )
    return found is not None


# --- presenting ---------------------------------------------------------------------------


def download_options(item: MediaItem, *, variant: MediaVariant | None = None) -> DownloadOptions:
    """SVGs and anything not displayable download as attachments; the rest show inline. A
    variant is named after the original (`photo-w320.webp`)."""
    kind, name = item.content_type, item.filename
    if variant is not None:
        stem = name.rsplit(".", 1)[0] if "." in name else name
        kind, name = variant.content_type, f"{stem}-{variant.name}.webp"
    return DownloadOptions(
        content_type=kind,
        content_disposition=content_disposition(name, inline=kind in inspect.INLINE_TYPES),
    )


async def present(
    session: AsyncSession, storage: Storage, settings: Settings, items: Sequence[MediaItem]
) -> list[Media]:
    """The items as the API answers them, with download URLs signed concurrently."""
    ids = [item.id for item in items]
    variants: dict[uuid.UUID, list[MediaVariant]] = {item_id: [] for item_id in ids}
    if ids:
        rows = await session.scalars(
            select(MediaVariant).where(MediaVariant.media_id.in_(ids)).order_by(MediaVariant.width)
        )
        for variant in rows:
            variants[variant.media_id].append(variant)
    expires_at = clock.now() + timedelta(seconds=settings.MEDIA_URL_TTL_SECONDS)
    return list(
        await asyncio.gather(
            *(_present_one(storage, item, variants[item.id], expires_at) for item in items)
        )
    )


async def _present_one(
    storage: Storage, item: MediaItem, variants: list[MediaVariant], expires_at: datetime
) -> Media:
    ready = item.status == MediaStatus.ready
    url = (
        await storage.presigned_get(
            item.storage_key, options=download_options(item), expires_at=expires_at
        )
        if ready
        else None
    )
    variant_urls = await asyncio.gather(
        *(
            storage.presigned_get(
                variant.storage_key,
                options=download_options(item, variant=variant),
                expires_at=expires_at,
            )
            for variant in variants
        )
    )
    return Media(
        id=item.id,
        filename=item.filename,
        content_type=item.content_type,
        size=item.size,
        width=item.width,
        height=item.height,
        alt=item.alt,
        title=item.title,
        status=item.status,
        url=url,
        url_expires_at=expires_at if ready else None,
        variants=[
            Variant(
                name=variant.name,
                width=variant.width,
                height=variant.height,
                size=variant.size,
                url=variant_url,
            )
            for variant, variant_url in zip(variants, variant_urls, strict=True)
        ],
        created_at=item.created_at,
    )
