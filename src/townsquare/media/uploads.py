"""Getting files in: a multipart upload streamed to storage (direct uploads to a presigned
URL are in `media/direct.py`, and share the checks here). The stored bytes decide what the
file is, and nothing that fails a check stays stored.

No database transaction stays open while bytes travel: the upload streams first, and the
quota is decided afterwards under the organization's lock, so a slow client holds no lock
(on SQLite, no write lock on the whole database).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

import anyio
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.config import Settings
from townsquare.errors import field_error
from townsquare.media import inspect, schemas
from townsquare.media.enums import MediaStatus, VariantsStatus
from townsquare.media.errors import (
    EmptyFile,
    FileTooLarge,
    QuotaExceeded,
)
from townsquare.media.filenames import clean_filename
from townsquare.media.models import MediaItem
from townsquare.media.multipart import FORM_OVERHEAD_BYTES, StreamingForm
from townsquare.media.service import bytes_used, lock_organization, original_key
from townsquare.orgs.context import OrgContext
from townsquare.storage.base import (
    ObjectTooLarge,
    Storage,
    stream_bytes,
)
from townsquare.storage.files import local_file

FieldsT = TypeVar("FieldsT", bound=BaseModel)


@dataclass(frozen=True)
class Checked:
    """A stored object that passed every check."""

    content_type: str
    size: int
    width: int | None
    height: int | None


async def end_read_transaction(session: AsyncSession) -> None:
    # The guard's reads are done; release the connection while the client sends bytes.
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("an upload must not start with unsaved changes")
    await session.commit()


async def _peek(chunks: AsyncIterator[bytes], size: int) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first `size` bytes (fewer if the stream is shorter), and the whole stream again."""
    head = bytearray()
    first: list[bytes] = []
    async for chunk in chunks:
        first.append(chunk)
        head += chunk
        if len(head) >= size:
            break

    async def replay() -> AsyncIterator[bytes]:
        for chunk in first:
            yield chunk
        async for chunk in chunks:
            yield chunk

    return bytes(head), replay()


async def collect(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise FileTooLarge(f"SVG files may be at most {limit} bytes.")
    return bytes(data)


async def store_checked(
    storage: Storage,
    key: str,
    chunks: AsyncIterator[bytes],
    *,
    filename: str,
    declared_type: str | None,
    max_bytes: int,
    settings: Settings,
) -> Checked:
    """Store the stream under `key` (at most `max_bytes`, else 413 `file_too_large`) if
    its bytes pass; on any refusal nothing stays."""
    head, stream = await _peek(chunks, inspect.HEAD_BYTES)
    content_type = inspect.detect_type(head, filename, declared_type)
    if content_type == "image/svg+xml":
        svg = await collect(stream, settings.MEDIA_SVG_MAX_BYTES)
        clean = await anyio.to_thread.run_sync(inspect.sanitize_svg, svg)
        stream = stream_bytes(clean)
    try:
        size = await storage.put(key, stream, content_type=content_type, max_bytes=max_bytes)
    except ObjectTooLarge as exc:
        raise FileTooLarge() from exc
    try:
        return await check_stored(storage, key, content_type, size, settings)
    except BaseException:
        await discard(storage, key)
        raise


async def check_stored(
    storage: Storage, key: str, content_type: str, size: int, settings: Settings
) -> Checked:
    if size == 0:
        raise EmptyFile()
    if content_type not in inspect.RASTER_TYPES:
        return Checked(content_type=content_type, size=size, width=None, height=None)
    async with local_file(storage, key) as path:
        inspected = await anyio.to_thread.run_sync(
            inspect.inspect_image, path, content_type, settings.MEDIA_MAX_IMAGE_PIXELS
        )
    return Checked(
        content_type=content_type, size=size, width=inspected.width, height=inspected.height
    )


async def check_quota(
    session: AsyncSession,
    ctx: OrgContext,
    size: int,
    settings: Settings,
    *,
    excluding: uuid.UUID | None = None,
) -> None:
    """Under the organization's lock (held until the caller's commit): `size` more bytes
    fit the quota, or 413 `quota_exceeded`."""
    await lock_organization(session, ctx.org.id)
    used = await bytes_used(session, ctx.org.id, excluding=excluding)
    if used + size > settings.MEDIA_QUOTA_BYTES_PER_ORG:
        raise QuotaExceeded(extra={"bytes_used": used, "quota": settings.MEDIA_QUOTA_BYTES_PER_ORG})


async def discard(storage: Storage, key: str) -> None:
    """Delete an object that failed, even while the request is being cancelled."""
    with anyio.CancelScope(shield=True):
        await storage.delete(key)


async def upload_multipart(
    session: AsyncSession,
    ctx: OrgContext,
    form: StreamingForm,
    *,
    storage: Storage,
    settings: Settings,
    content_length: int | None,
) -> MediaItem:
    """Stream the form's `file` to storage, check it, and record it (with `alt`, `title`)."""
    part = await form.open_file()
    filename = clean_filename(part.filename)
    inspect.check_name_and_declared_type(filename, part.content_type)
    _form_fields(form.fields)  # the fields sent before the file, refused before any byte
    if (
        content_length is not None
        and content_length > settings.MEDIA_MAX_BYTES + FORM_OVERHEAD_BYTES
    ):
        raise FileTooLarge()
    if await bytes_used(session, ctx.org.id) >= settings.MEDIA_QUOTA_BYTES_PER_ORG:
        raise QuotaExceeded()
    await end_read_transaction(session)
    media_id = uuid.uuid4()
    key = original_key(ctx.org.id, media_id)
    checked = await store_checked(
        storage,
        key,
        form.file_chunks(),
        filename=filename,
        declared_type=part.content_type,
        max_bytes=settings.MEDIA_MAX_BYTES,
        settings=settings,
    )
    try:
        fields = _form_fields(await form.finish())
        await check_quota(session, ctx, checked.size, settings)
    except BaseException:
        await discard(storage, key)
        raise
    item = MediaItem(
        id=media_id,
        organization_id=ctx.org.id,
        uploaded_by_id=ctx.user.id,
        status=MediaStatus.ready,
        storage_key=key,
        filename=filename,
        content_type=checked.content_type,
        size=checked.size,
        width=checked.width,
        height=checked.height,
        alt=fields.alt,
        title=fields.title,
        variants_status=variants_status(checked.content_type),
    )
    session.add(item)
    await session.flush()
    return item


def _form_fields(fields: dict[str, str]) -> schemas.MediaFormFields:
    return form_fields(schemas.MediaFormFields, fields)


def form_fields(model: type[FieldsT], fields: dict[str, str]) -> FieldsT:
    """A form's text fields, checked like a JSON body's (422 naming the field)."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "form"
        raise field_error(field, error["msg"]) from exc


def variants_status(content_type: str) -> VariantsStatus:
    return VariantsStatus.pending if content_type in inspect.RASTER_TYPES else VariantsStatus.none
