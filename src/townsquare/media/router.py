"""The media library's endpoints (`/api/v1/orgs/{org}/media...`): owners, admins, editors."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from townsquare.body_limit import bounds_its_own_body
from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.kit.pagination import Page, PageParams, page_params
from townsquare.media import direct, service, uploads
from townsquare.media.deps import MediaManager, get_storage
from townsquare.media.multipart import StreamingForm, upload_openapi
from townsquare.media.schemas import Media, MediaUpdate, Upload, UploadCreate
from townsquare.storage.base import Storage

router = APIRouter(prefix="/orgs/{org}/media", tags=["media"], route_class=TransactionalRoute)

AppStorage = Annotated[Storage, Depends(get_storage)]
MediaId = Annotated[uuid.UUID, Path(description="A media item of this organization.")]
UploadId = Annotated[uuid.UUID, Path(description="A pending direct upload.")]
Paging = Annotated[PageParams, Depends(page_params)]

_MULTIPART_BODY = upload_openapi(
    {"alt": {"type": "string", "maxLength": 500}, "title": {"type": "string", "maxLength": 200}}
)
_REFUSALS: dict[int | str, dict[str, Any]] = {
    413: {"description": "`file_too_large`, `quota_exceeded` or `payload_too_large`"},
    415: {"description": "`unsupported_file_type`: bytes, declared type and extension disagree"},
    422: {"description": "`empty_file`, `invalid_image`, `image_too_large`, `invalid_multipart`"},
}


@router.post(
    "", status_code=201, response_model=Media, openapi_extra=_MULTIPART_BODY, responses=_REFUSALS
)
@bounds_its_own_body
async def upload_media(
    request: Request,
    ctx: MediaManager,
    session: DbSession,
    settings: AppSettings,
    storage: AppStorage,
) -> Media:
    """Upload one file as multipart/form-data (`file`, optional `alt` and `title`). It is
    streamed to storage and checked by its bytes; a refused file leaves nothing stored."""
    length = request.headers.get("content-length")
    form = StreamingForm(
        request.headers.get("content-type"),
        request.stream(),
        max_file_bytes=settings.MEDIA_MAX_BYTES,
    )
    item = await uploads.upload_multipart(
        session,
        ctx,
        form,
        storage=storage,
        settings=settings,
        content_length=int(length) if length and length.isdigit() else None,
    )
    return (await service.present(session, storage, settings, [item]))[0]


@router.post("/uploads", status_code=201, response_model=Upload, responses=_REFUSALS)
async def create_upload(
    body: UploadCreate,
    ctx: MediaManager,
    session: DbSession,
    settings: AppSettings,
    storage: AppStorage,
) -> Upload:
    """Reserve quota for a direct upload and get a presigned URL to PUT the file to; then
    call `complete`. Uploads not completed in `MEDIA_UPLOAD_TTL_SECONDS` are removed."""
    item, presigned = await direct.reserve_upload(
        session,
        ctx,
        filename=body.filename,
        content_type=body.content_type,
        size=body.size,
        alt=body.alt,
        title=body.title,
        storage=storage,
        settings=settings,
    )
    assert presigned.expires_at is not None
    return Upload(
        upload_id=item.id,
        method=presigned.method,
        url=presigned.url,
        headers=presigned.headers,
        fields={},
        expires_at=presigned.expires_at,
        media=(await service.present(session, storage, settings, [item]))[0],
    )


@router.post("/uploads/{upload_id}/complete", response_model=Media, responses=_REFUSALS)
async def complete_upload(
    upload_id: UploadId,
    ctx: MediaManager,
    session: DbSession,
    settings: AppSettings,
    storage: AppStorage,
) -> Media:
    """Check the stored file by its bytes and add it to the library; a file that fails is
    deleted together with its reservation."""
    item = await direct.complete_upload(session, ctx, upload_id, storage=storage, settings=settings)
    return (await service.present(session, storage, settings, [item]))[0]


@router.get("", response_model=Page[Media])
async def list_media(
    ctx: MediaManager,
    session: DbSession,
    settings: AppSettings,
    storage: AppStorage,
    params: Paging,
    kind: Annotated[
        str | None, Query(pattern="^(image|video|application)$", description="Filter by kind.")
    ] = None,
) -> Page[Media]:
    """The library, newest first, each with short-lived download URLs."""
    items, total = await service.list_media(session, ctx, params, kind=kind)
    return Page[Media].of(await service.present(session, storage, settings, items), params, total)


@router.get("/{media_id}", response_model=Media)
async def get_media(
    media_id: MediaId,
    ctx: MediaManager,
    session: DbSession,
    settings: AppSettings,
    storage: AppStorage,
) -> Media:
    """One file with its variants and download URLs."""
    item = await service.get_media(session, ctx, media_id)
    return (await service.present(session, storage, settings, [item]))[0]


@router.patch("/{media_id}", response_model=Media)
async def update_media(
    media_id: MediaId,
    body: MediaUpdate,
    ctx: MediaManager,
    session: DbSession,
    settings: AppSettings,
    storage: AppStorage,
) -> Media:
    """Change alt text or title."""
    item = await service.update_media(session, ctx, media_id, body.model_dump(exclude_unset=True))
    return (await service.present(session, storage, settings, [item]))[0]


@router.delete("/{media_id}", status_code=204, responses={409: {"description": "`media_in_use`"}})
async def delete_media(media_id: MediaId, ctx: MediaManager, session: DbSession) -> Response:
    """Delete the file; its stored objects are removed in the background."""
    await service.delete_media(session, ctx, media_id)
    return Response(status_code=204)
