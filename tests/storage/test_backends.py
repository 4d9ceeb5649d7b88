"""Both storage backends against the same expectations: the local folder, and S3 on moto's
server. Every object operation of the interface, sizes enforced while streaming, ranges,
moves, and presigned URLs used with plain HTTP."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.storage.servers import S3Server, s3_server
from townsquare.kit import clock
from townsquare.storage.base import (
    ByteRange,
    DownloadOptions,
    ObjectNotFound,
    ObjectTooLarge,
    Storage,
    check_key,
    stream_bytes,
)
from townsquare.storage.factory import create_storage
from townsquare.storage.local import LocalStorage
from townsquare.storage.s3 import PART_SIZE, S3Storage

__all__ = ["s3_server"]

MB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "local":
        backend: Storage = create_storage(make_settings(MEDIA_DIR=tmp_path / "media"))
        assert isinstance(backend, LocalStorage)
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = await server.new_bucket()
        backend = create_storage(make_settings(**server.settings(bucket)))
        assert isinstance(backend, S3Storage)
    try:
        yield backend
    finally:
        await backend.close()


async def _pattern(size: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    block = bytes(range(256)) * (chunk // 256)
    sent = 0
    while sent < size:
        piece = block[: min(chunk, size - sent)]
        sent += len(piece)
        yield piece


def _pattern_bytes(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


async def _read(storage: Storage, key: str, byte_range: ByteRange | None = None) -> bytes:
    stored = await storage.open(key, byte_range=byte_range)
    return b"".join([chunk async for chunk in stored.chunks])


def _key() -> str:
    return f"tests/{uuid.uuid4()}/original"


class TestObjects:
    async def test_put_head_open_delete(self, storage: Storage) -> None:
        key = _key()
        assert await storage.head(key) is None
        size = await storage.put(key, stream_bytes(b"hello world"), content_type="text/plain")
        assert size == 11
        info = await storage.head(key)
        assert info is not None
        assert (info.size, info.content_type) == (11, "text/plain")
        assert await _read(storage, key) == b"hello world"
        assert await _read(storage, key, ByteRange(6, 10)) == b"world"
        stored = await storage.open(key, byte_range=ByteRange(0, 4))
        assert (stored.size, stored.byte_range) == (11, ByteRange(0, 4))
        await storage.delete(key)
        assert await storage.head(key) is None
        await storage.delete(key)  # deleting what is not there is fine
        with pytest.raises(ObjectNotFound):
            await storage.open(key)

    async def test_a_large_object_in_parts(self, storage: Storage) -> None:
        key = _key()
        size = 2 * PART_SIZE + 12345
        assert await storage.put(key, _pattern(size), content_type="video/mp4") == size
        data = await _read(storage, key)
        assert hashlib.sha256(data).digest() == hashlib.sha256(_pattern_bytes(size)).digest()
        middle = ByteRange(PART_SIZE - 10, PART_SIZE + 9)
        assert (
            await _read(storage, key, middle)
            == _pattern_bytes(size)[PART_SIZE - 10 : PART_SIZE + 10]
        )

    @pytest.mark.parametrize("size", [100, PART_SIZE + 100])
    async def test_past_max_bytes_nothing_is_kept(self, storage: Storage, size: int) -> None:
        key = _key()
        with pytest.raises(ObjectTooLarge):
            await storage.put(key, _pattern(size), content_type="video/mp4", max_bytes=size - 1)
        assert await storage.head(key) is None
        await _assert_empty(storage)

    async def test_a_failing_stream_keeps_nothing(self, storage: Storage) -> None:
        key = _key()

        async def broken() -> AsyncIterator[bytes]:
            async for chunk in _pattern(PART_SIZE + 1000):
                yield chunk
            raise ConnectionError("the client went away")

        with pytest.raises(ConnectionError):
            await storage.put(key, broken(), content_type="video/mp4")
        assert await storage.head(key) is None
        await _assert_empty(storage)

    async def test_replace(self, storage: Storage) -> None:
        key = _key()
        await storage.put(key, stream_bytes(b"first"), content_type="text/plain")
        await storage.put(key, stream_bytes(b"second!"), content_type="image/png")
        info = await storage.head(key)
        assert info is not None
        assert (info.size, info.content_type) == (7, "image/png")
        assert await _read(storage, key) == b"second!"

    async def test_move(self, storage: Storage) -> None:
        source, target = _key(), _key()
        await storage.put(source, stream_bytes(b"moving"), content_type="image/png")
        await storage.move(source, target)
        assert await storage.head(source) is None
        assert await _read(storage, target) == b"moving"
        with pytest.raises(ObjectNotFound):
            await storage.move(source, _key())

    @pytest.mark.parametrize(
        "key", ["../x", "a/../b", "/abs", "a//b", "A/b", "a/", "", "a\x00b", "a\nb", "x" * 600]
    )
    async def test_keys_that_could_escape_are_refused(self, storage: Storage, key: str) -> None:
        with pytest.raises(ValueError, match="invalid storage key"):
            await storage.put(key, stream_bytes(b"x"), content_type="text/plain")
        with pytest.raises(ValueError, match="invalid storage key"):
            check_key(key)


async def _assert_empty(storage: Storage) -> None:
    if isinstance(storage, LocalStorage):
        assert [p for p in storage.root.rglob("*") if p.is_file()] == []
    else:
        assert isinstance(storage, S3Storage)
        client, _ = await storage._clients()
        listed = await client.list_objects_v2(Bucket=storage.bucket)
        uploads = await client.list_multipart_uploads(Bucket=storage.bucket)
        assert listed.get("Contents", []) == []
        assert uploads.get("Uploads", []) == []


class TestPresigned:
    async def test_put_then_get_on_s3(self, s3_server: S3Server) -> None:
        # The local backend's URLs are served by the app: see tests/media.
        storage = create_storage(make_settings(**s3_server.settings(await s3_server.new_bucket())))
        try:
            await self._put_then_get(storage)
        finally:
            await storage.close()

    async def _put_then_get(self, storage: Storage) -> None:
        key = _key()
        expires_at = clock.now() + timedelta(minutes=5)
        upload = await storage.presigned_put(
            key, content_type="image/png", max_bytes=100, expires_at=expires_at
        )
        async with httpx.AsyncClient() as client:
            put = await client.put(upload.url, content=b"\x89PNG....", headers=upload.headers)
            assert put.status_code == 200, put.text
            options = DownloadOptions(
                content_type="image/png",
                content_disposition="attachment; filename=\"a.png\"; filename*=UTF-8''a.png",
            )
            url = await storage.presigned_get(key, options=options, expires_at=expires_at)
            got = await client.get(url)
            assert got.status_code == 200
            assert got.content == b"\x89PNG...."
            assert got.headers["content-type"] == "image/png"
            assert got.headers["content-disposition"] == options.content_disposition
            ranged = await client.get(url, headers={"Range": "bytes=1-3"})
            assert (ranged.status_code, ranged.content) == (206, b"PNG")

    async def test_urls_are_for_the_public_endpoint(self, s3_server: S3Server) -> None:
        bucket = await s3_server.new_bucket()
        settings = make_settings(
            **s3_server.settings(bucket), S3_PUBLIC_ENDPOINT_URL="https://media.example.org"
        )
        storage = create_storage(settings)
        try:
            options = DownloadOptions(content_type="image/png", content_disposition="inline")
            expires_at = clock.now() + timedelta(minutes=5)
            url = await storage.presigned_get("a/b", options=options, expires_at=expires_at)
            assert url.startswith(f"https://media.example.org/{bucket}/a/b?")
            upload = await storage.presigned_put(
                "a/b", content_type="image/png", max_bytes=1, expires_at=expires_at
            )
            assert upload.url.startswith(f"https://media.example.org/{bucket}/a/b?")
            # The app's own traffic still goes to the endpoint it reaches.
            await storage.put("a/b", stream_bytes(b"x"), content_type="image/png")
            assert await storage.head("a/b") is not None
        finally:
            await storage.close()

    def test_s3_needs_a_bucket(self) -> None:
        with pytest.raises(ValueError, match="S3_BUCKET"):
            create_storage(make_settings(STORAGE="s3"))
