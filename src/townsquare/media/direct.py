"""Direct uploads: the client PUTs the file straight to storage at a presigned URL, then
calls `complete`. Nothing the client declared is trusted.

The URL writes to an upload key only. `complete` first moves what is there to a key of its
own and checks that copy, so a PUT arriving meanwhile or afterwards (the URL stays valid
until it expires) never changes a checked file; and the upload key is queued for removal
once the URL has expired, so nothing sent late stays stored outside the quota.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.config import Settings
from townsquare.db import commit
from townsquare.kit import clock
from townsquare.media import inspect
from townsquare.media.enums import MediaStatus
from townsquare.media.errors import EmptyFile, FileMissing, FileTooLarge, UploadNotFound
from townsquare.media.filenames import clean_filename
from townsquare.media.models import MediaItem
from townsquare.media.service import forget_objects, original_key, upload_key
from townsquare.media.uploads import (
    Checked,
    check_quota,
    check_stored,
    collect,
    discard,
    end_read_transaction,
    variants_status,
)
from townsquare.orgs.context import OrgContext
from townsquare.storage.base import (
    ByteRange,
    ObjectNotFound,
    PresignedUpload,
    Storage,
    stream_bytes,
)


async def reserve_upload(
    session: AsyncSession,
    ctx: OrgContext,
    *,
    filename: str,
    content_type: str,
    size: int,
    alt: str,
    title: str,
    storage: Storage,
    settings: Settings,
) -> tuple[MediaItem, PresignedUpload]:
    """Reserve `size` bytes of the quota and a presigned URL to PUT the file to."""
    name = clean_filename(filename)
    inspect.check_name_and_declared_type(name, content_type)
    if size > settings.MEDIA_MAX_BYTES:
        raise FileTooLarge()
    await check_quota(session, ctx, size, settings)
    media_id = uuid.uuid4()
    expires_at = clock.now() + timedelta(seconds=settings.MEDIA_UPLOAD_TTL_SECONDS)
    item = MediaItem(
        id=media_id,
        organization_id=ctx.org.id,
        uploaded_by_id=ctx.user.id,
        status=MediaStatus.pending,
        storage_key=original_key(ctx.org.id, media_id),
        filename=name,
        content_type=content_type.split(";", 1)[0].strip().lower(),
        size=size,
        alt=alt,
        title=title,
        upload_expires_at=expires_at,
    )
    session.add(item)
    await session.flush()
    presigned = await storage.presigned_put(
        upload_key(ctx.org.id, media_id),
        content_type=item.content_type,
        max_bytes=size,
        expires_at=expires_at,
    )
    return item, presigned


async def _pending(
    session: AsyncSession, ctx: OrgContext, upload_id: uuid.UUID, *, for_update: bool = False
) -> MediaItem:
    statement = (
        select(MediaItem)
        .where(
            MediaItem.id == upload_id,
            MediaItem.organization_id == ctx.org.id,
            MediaItem.status == MediaStatus.pending,
        )
        .execution_options(populate_existing=True)
    )
    if for_update:
        statement = statement.with_for_update()
    item = await session.scalar(statement)
    if item is None or (item.upload_expires_at and item.upload_expires_at <= clock.now()):
        raise UploadNotFound()
    return item


async def complete_upload(
    session: AsyncSession,
    ctx: OrgContext,
    upload_id: uuid.UUID,
    *,
    storage: Storage,
    settings: Settings,
) -> MediaItem:
    """Check what the client stored like a multipart upload and add it to the library. A
    file that fails is deleted with its reservation (committed, though the answer is an
    error); with nothing stored yet the reservation stays (409 `upload_incomplete`)."""
    item = await _pending(session, ctx, upload_id)
    source = upload_key(ctx.org.id, item.id)
    info = await storage.head(source)
    if info is None:
        raise FileMissing()
    filename, declared = item.filename, item.content_type
    await end_read_transaction(session)
    if info.size > settings.MEDIA_MAX_BYTES:
        await discard(storage, source)
        await _drop_reservation(session, ctx, upload_id)
        raise FileTooLarge()
    key = original_key(ctx.org.id, upload_id, attempt=uuid.uuid4().hex[:12])
    try:
        await storage.move(source, key)
    except ObjectNotFound as exc:  # a racing `complete` took it
        raise FileMissing() from exc
    try:
        checked = await _check_moved(storage, key, filename, declared, settings)
    except BaseException:
        await discard(storage, key)
        await _drop_reservation(session, ctx, upload_id)
        raise
    return await _accept(session, ctx, upload_id, key, checked, storage=storage, settings=settings)


async def _check_moved(
    storage: Storage, key: str, filename: str, declared: str, settings: Settings
) -> Checked:
    """Check the moved object by its own size and bytes; an SVG is replaced by its
    sanitized self."""
    info = await storage.head(key)
    if info is None:
        raise FileMissing()
    if info.size > settings.MEDIA_MAX_BYTES:
        raise FileTooLarge()
    if info.size == 0:
        raise EmptyFile()
    first = ByteRange(0, min(info.size, inspect.HEAD_BYTES) - 1)
    stored = await storage.open(key, byte_range=first)
    head = b"".join([chunk async for chunk in stored.chunks])
    content_type = inspect.detect_type(head, filename, declared)
    size = info.size
    if content_type == "image/svg+xml":
        whole = await storage.open(key)
        svg = await collect(whole.chunks, settings.MEDIA_SVG_MAX_BYTES)
        clean = await anyio.to_thread.run_sync(inspect.sanitize_svg, svg)
        size = await storage.put(key, stream_bytes(clean), content_type=content_type)
    return await check_stored(storage, key, content_type, size, settings)


async def _accept(
    session: AsyncSession,
    ctx: OrgContext,
    upload_id: uuid.UUID,
    key: str,
    checked: Checked,
    *,
    storage: Storage,
    settings: Settings,
) -> MediaItem:
    """Under the organization's lock: the checked file becomes the item, if the upload is
    still pending (no racing `complete` won, it has not expired) and the quota holds."""
    try:
        item = await _pending(session, ctx, upload_id, for_update=True)
        await check_quota(session, ctx, checked.size, settings, excluding=item.id)
    except UploadNotFound:
        await discard(storage, key)
        raise
    except BaseException:
        await discard(storage, key)
        await _drop_reservation(session, ctx, upload_id)
        raise
    url_expires_at = item.upload_expires_at
    item.status = MediaStatus.ready
    item.storage_key = key
    item.size = checked.size
    item.content_type = checked.content_type
    item.width, item.height = checked.width, checked.height
    item.upload_expires_at = None
    item.variants_status = variants_status(checked.content_type)
    await forget_objects(session, [upload_key(ctx.org.id, item.id)], not_before=url_expires_at)
    return item


async def _drop_reservation(session: AsyncSession, ctx: OrgContext, upload_id: uuid.UUID) -> None:
    # Read before the rollback, which expires every object of the session (`ctx.org` too).
    organization_id = ctx.org.id
    await session.rollback()
    item = await session.scalar(
        select(MediaItem)
        .where(
            MediaItem.id == upload_id,
            MediaItem.organization_id == organization_id,
            MediaItem.status == MediaStatus.pending,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if item is not None:
        await forget_objects(
            session, [upload_key(organization_id, item.id)], not_before=item.upload_expires_at
        )
        await session.delete(item)
    await commit(session)
