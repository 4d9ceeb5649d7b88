"""The local backend: objects as files under one folder, served through the app by signed
URLs (see `storage/router.py`), so downloads and direct uploads work with nothing installed."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import anyio

from townsquare.storage.base import (
    CHUNK_SIZE,
    ByteRange,
    DownloadOptions,
    ObjectInfo,
    ObjectNotFound,
    ObjectTooLarge,
    PresignedUpload,
    StoredObject,
    check_key,
)
from townsquare.storage.signing import UrlSigner

STORAGE_PATH = "/api/v1/storage"
_TYPE_SUFFIX = ".content-type"


class LocalStorage:
    def __init__(self, root: Path, *, public_url: str, signer: UrlSigner) -> None:
        self.root = root.resolve()
        self.public_url = public_url.rstrip("/")
        self.signer = signer

    def path(self, key: str) -> Path:
        """Where the object lives on disk (the media duties read images from here)."""
        return self.root / check_key(key)

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> int:
        target = self.path(key)
        await anyio.to_thread.run_sync(lambda: target.parent.mkdir(parents=True, exist_ok=True))
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        size = 0
        try:
            async with await anyio.open_file(partial, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise ObjectTooLarge()
                    await out.write(chunk)
            await anyio.to_thread.run_sync(
                lambda: _write_type_and_replace(partial, target, content_type)
            )
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        return size

    async def open(self, key: str, *, byte_range: ByteRange | None = None) -> StoredObject:
        info = await self.head(key)
        if info is None:
            raise ObjectNotFound(key)
        try:
            # Opened now: an object deleted after this still streams whole (POSIX), and one
            # deleted before answers ObjectNotFound rather than breaking off mid-response.
            source = await anyio.open_file(self.path(key), "rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        start, length = (
            (0, info.size) if byte_range is None else (byte_range.start, byte_range.length)
        )
        return StoredObject(
            chunks=_read(source, start, length),
            size=info.size,
            content_type=info.content_type,
            byte_range=byte_range,
        )

    async def head(self, key: str) -> ObjectInfo | None:
        path = self.path(key)
        try:
            stat = await anyio.to_thread.run_sync(path.stat)
        except FileNotFoundError:
            return None
        type_file = path.with_name(path.name + _TYPE_SUFFIX)
        try:
            content_type: str | None = (await anyio.Path(type_file).read_text()).strip() or None
        except FileNotFoundError:
            content_type = None
        return ObjectInfo(size=stat.st_size, content_type=content_type)

    async def delete(self, key: str) -> None:
        path = self.path(key)
        for doomed in (path, path.with_name(path.name + _TYPE_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                await anyio.to_thread.run_sync(doomed.unlink)

    async def move(self, source: str, target: str) -> None:
        source_path, target_path = self.path(source), self.path(target)
        try:
            await anyio.to_thread.run_sync(lambda: _move(source_path, target_path))
        except FileNotFoundError as exc:
            raise ObjectNotFound(source) from exc

    async def presigned_put(
        self, key: str, *, content_type: str, max_bytes: int, expires_at: datetime
    ) -> PresignedUpload:
        query = self.signer.query(
            "PUT", check_key(key), expires_at, content_type=content_type, max_bytes=str(max_bytes)
        )
        return PresignedUpload(
            url=f"{self.public_url}{STORAGE_PATH}/{key}?{query}",
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=expires_at,
        )

    async def presigned_get(
        self, key: str, *, options: DownloadOptions, expires_at: datetime
    ) -> str:
        query = self.signer.query(
            "GET",
            check_key(key),
            expires_at,
            content_type=options.content_type,
            disposition=options.content_disposition,
        )
        return f"{self.public_url}{STORAGE_PATH}/{key}?{query}"

    async def close(self) -> None:
        return None


def _write_type_and_replace(partial: Path, target: Path, content_type: str) -> None:
    target.with_name(target.name + _TYPE_SUFFIX).write_text(content_type)
    os.replace(partial, target)


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # The bytes first, atomically: a PUT racing this one lands beside, never inside.
    os.replace(source, target)
    source_type = source.with_name(source.name + _TYPE_SUFFIX)
    target_type = target.with_name(target.name + _TYPE_SUFFIX)
    with contextlib.suppress(FileNotFoundError):
        os.replace(source_type, target_type)


async def _read(source: anyio.AsyncFile[bytes], start: int, length: int) -> AsyncIterator[bytes]:
    async with source:
        await source.seek(start)
        remaining = length
        while remaining > 0:
            chunk = await source.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
