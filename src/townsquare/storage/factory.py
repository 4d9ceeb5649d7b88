"""The configured storage backend (`TOWNSQUARE_STORAGE`)."""

from __future__ import annotations

from townsquare.config import Settings
from townsquare.storage.base import Storage
from townsquare.storage.local import LocalStorage
from townsquare.storage.signing import UrlSigner


def create_storage(settings: Settings) -> Storage:
    if settings.STORAGE == "s3":
        from townsquare.storage.s3 import S3Storage

        return S3Storage(settings)
    return LocalStorage(
        settings.MEDIA_DIR, public_url=settings.PUBLIC_URL, signer=UrlSigner(settings.SECRET_KEY)
    )
