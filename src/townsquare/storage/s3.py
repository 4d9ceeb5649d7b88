"""The S3 backend (AWS S3, MinIO or any S3-compatible store) through aiobotocore.

Uploads stream in parts of `PART_SIZE`, so memory holds one part at a time whatever the
object's size. Browsers may reach the store by another address than Townsquare does
(`S3_PUBLIC_ENDPOINT_URL`): presigned URLs are signed for that address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from townsquare.config import Settings
from townsquare.kit import clock
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

PART_SIZE = 5 * 1024 * 1024
"""S3's smallest part: the most memory one upload holds."""


class S3Storage:
    def __init__(self, settings: Settings) -> None:
        if not settings.S3_BUCKET:
            raise ValueError("TOWNSQUARE_S3_BUCKET is required with TOWNSQUARE_STORAGE=s3")
        self.bucket = settings.S3_BUCKET
        self._settings = settings
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._signing_client: Any = None

    def _client_options(self, endpoint_url: str | None) -> dict[str, Any]:
        settings = self._settings
        options: dict[str, Any] = {
            "region_name": settings.S3_REGION,
            "config": AioConfig(
                signature_version="s3v4",
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        }
        if endpoint_url:
            options["endpoint_url"] = endpoint_url
        if settings.S3_ACCESS_KEY_ID and settings.S3_SECRET_ACCESS_KEY:
            options["aws_access_key_id"] = settings.S3_ACCESS_KEY_ID
            options["aws_secret_access_key"] = settings.S3_SECRET_ACCESS_KEY
        return options

    async def _clients(self) -> tuple[Any, Any]:
        if self._client is None:
            session = get_session()
            endpoint = self._settings.S3_ENDPOINT_URL
            self._client = await self._stack.enter_async_context(
                session.create_client("s3", **self._client_options(endpoint))
            )
            public = self._settings.S3_PUBLIC_ENDPOINT_URL
            self._signing_client = (
                await self._stack.enter_async_context(
                    session.create_client("s3", **self._client_options(public))
                )
                if public and public != endpoint
                else self._client
            )
        return self._client, self._signing_client

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> int:
        client, _ = await self._clients()
        check_key(key)
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ObjectTooLarge()
                buffer += chunk
                if len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        created = await client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType=content_type
                        )
                        upload_id = created["UploadId"]
                    # The buffer itself is sent (no copy); the next part gets a new one.
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, buffer))
                    buffer = bytearray()
            if upload_id is None:
                await client.put_object(
                    Bucket=self.bucket, Key=key, Body=buffer, ContentType=content_type
                )
                return size
            if buffer:
                parts.append(await self._upload_part(key, upload_id, len(parts) + 1, buffer))
            await client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            return size
        except BaseException:
            if upload_id is not None:
                with anyio.CancelScope(shield=True):
                    await client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
            raise

    async def _upload_part(
        self, key: str, upload_id: str, number: int, data: bytearray
    ) -> dict[str, Any]:
        client, _ = await self._clients()
        part = await client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": part["ETag"]}

    async def open(self, key: str, *, byte_range: ByteRange | None = None) -> StoredObject:
        client, _ = await self._clients()
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": check_key(key)}
        if byte_range is not None:
            params["Range"] = f"bytes={byte_range.start}-{byte_range.end}"
        try:
            response = await client.get_object(**params)
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectNotFound(key) from exc
            raise
        size = int(response["ContentLength"])
        if byte_range is not None:
            size = int(str(response.get("ContentRange", "")).rsplit("/", 1)[-1] or size)
        return StoredObject(
            chunks=_body_chunks(response["Body"]),
            size=size,
            content_type=response.get("ContentType"),
            byte_range=byte_range,
        )

    async def head(self, key: str) -> ObjectInfo | None:
        client, _ = await self._clients()
        try:
            response = await client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        return ObjectInfo(
            size=int(response["ContentLength"]), content_type=response.get("ContentType")
        )

    async def delete(self, key: str) -> None:
        client, _ = await self._clients()
        await client.delete_object(Bucket=self.bucket, Key=check_key(key))

    async def move(self, source: str, target: str) -> None:
        client, _ = await self._clients()
        try:
            # A server-side copy is a snapshot: a PUT to `source` during it lands after.
            await client.copy_object(
                Bucket=self.bucket,
                Key=check_key(target),
                CopySource={"Bucket": self.bucket, "Key": check_key(source)},
            )
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectNotFound(source) from exc
            raise
        await client.delete_object(Bucket=self.bucket, Key=source)

    async def presigned_put(
        self, key: str, *, content_type: str, max_bytes: int, expires_at: datetime
    ) -> PresignedUpload:
        _, signer = await self._clients()
        url = await signer.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": check_key(key), "ContentType": content_type},
            ExpiresIn=_seconds_until(expires_at),
            HttpMethod="PUT",
        )
        return PresignedUpload(
            url=url, method="PUT", headers={"Content-Type": content_type}, expires_at=expires_at
        )

    async def presigned_get(
        self, key: str, *, options: DownloadOptions, expires_at: datetime
    ) -> str:
        _, signer = await self._clients()
        url: str = await signer.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": check_key(key),
                "ResponseContentType": options.content_type,
                "ResponseContentDisposition": options.content_disposition,
            },
            ExpiresIn=_seconds_until(expires_at),
        )
        return url

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = self._signing_client = None


def _is_missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


def _seconds_until(expires_at: datetime) -> int:
    return max(1, int((expires_at - clock.now()).total_seconds()))


async def _body_chunks(body: Any) -> AsyncIterator[bytes]:
    async with body as stream:
        while True:
            chunk = await stream.read(CHUNK_SIZE)
            if not chunk:
                break
            yield chunk
