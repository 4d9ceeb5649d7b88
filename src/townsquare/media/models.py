"""Tables of the media library."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.db import Model, enum_column
from townsquare.media.enums import MediaStatus, VariantsStatus

FILENAME_MAX = 255
CONTENT_TYPE_MAX = 100
ALT_MAX = 500
TITLE_MAX = 200
KEY_MAX = 300


class MediaItem(Model):
    """A stored file of an organization. `size` is the stored size once ready, and the
    reserved size while a direct upload is pending (both count against the quota)."""

    __tablename__ = "media_items"
    __table_args__ = (
        Index(None, "organization_id", "created_at"),
        Index(None, "status", "upload_expires_at"),
        Index(None, "variants_status", "variants_locked_until"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    uploaded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    status: Mapped[MediaStatus] = mapped_column(enum_column(MediaStatus, "media_status"))
    storage_key: Mapped[str] = mapped_column(String(KEY_MAX), unique=True)
    filename: Mapped[str] = mapped_column(String(FILENAME_MAX))
    content_type: Mapped[str] = mapped_column(String(CONTENT_TYPE_MAX))
    size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    alt: Mapped[str] = mapped_column(String(ALT_MAX), default="")
    title: Mapped[str] = mapped_column(String(TITLE_MAX), default="")
    upload_expires_at: Mapped[datetime | None] = mapped_column()
    variants_status: Mapped[VariantsStatus] = mapped_column(
        enum_column(VariantsStatus, "variants_status"), default=VariantsStatus.none
    )
    variants_attempts: Mapped[int] = mapped_column(Integer, default=0)
    variants_locked_until: Mapped[datetime | None] = mapped_column()


class MediaVariant(Model):
    """A resized WebP copy of an image, made by the `media.make_variants` duty."""

    __tablename__ = "media_variants"
    __table_args__ = (UniqueConstraint("media_id", "name"),)

    media_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media_items.id", ondelete="CASCADE"))
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(32))
    storage_key: Mapped[str] = mapped_column(String(KEY_MAX), unique=True)
    content_type: Mapped[str] = mapped_column(String(CONTENT_TYPE_MAX))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
