"""Request and response types of the media library."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from townsquare.kit.fields import RequestBody, SingleLine, not_null
from townsquare.media.enums import MediaStatus
from townsquare.media.models import ALT_MAX, CONTENT_TYPE_MAX, FILENAME_MAX, TITLE_MAX

Alt = Annotated[str, SingleLine(ALT_MAX, min_length=0)]
Title = Annotated[str, SingleLine(TITLE_MAX, min_length=0)]


class Variant(BaseModel):
    name: str = Field(description="The preset, such as `w320`.")
    width: int
    height: int
    size: int
    url: str


class Media(BaseModel):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int = Field(description="Bytes stored (while pending: bytes reserved).")
    width: int | None
    height: int | None
    alt: str
    title: str
    status: MediaStatus
    url: str | None = Field(description="A short-lived download URL (null while pending).")
    url_expires_at: datetime | None
    variants: list[Variant]
    created_at: datetime


class MediaUpdate(RequestBody):
    """Only the fields sent change; send `""` to clear one."""

    alt: Alt | None = None
    title: Title | None = None

    _required = not_null("alt", "title")


class MediaFormFields(RequestBody):
    """The text fields of a multipart upload, beside its `file`."""

    alt: Alt = ""
    title: Title = ""


class UploadCreate(RequestBody):
    """What the client means to upload; checked again against the bytes at `complete`."""

    filename: Annotated[str, SingleLine(FILENAME_MAX)]
    content_type: Annotated[str, SingleLine(CONTENT_TYPE_MAX)]
    size: int = Field(gt=0, description="Bytes; the quota reserves this much until complete.")
    alt: Alt = ""
    title: Title = ""


class Upload(BaseModel):
    """Where to PUT the file: `method` to `url` with `headers`, before `expires_at`; then
    `POST .../uploads/{upload_id}/complete`."""

    upload_id: uuid.UUID
    method: str
    url: str
    headers: dict[str, str]
    fields: dict[str, str] = Field(
        description="Form fields for stores that take a POST form (empty for a PUT)."
    )
    expires_at: datetime
    media: Media
