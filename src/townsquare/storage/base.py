"""The storage interface every backend implements, and what it hands back."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9/_.-]{0,500}$")
CHUNK_SIZE = 64 * 1024


class ObjectNotFound(Exception):
    """No object is stored under the key."""


class ObjectTooLarge(Exception):
    """A stream passed the size it was allowed; nothing was kept."""


def check_key(key: str) -> str:
    """Keys are made by Townsquare, never by clients; refuse anything that could escape."""
    if not KEY_PATTERN.match(key) or ".." in key or "//" in key or key.endswith("/"):
        raise ValueError(f"invalid storage key {key!r}")
    return key


async def stream_bytes(data: bytes) -> AsyncIterator[bytes]:
    """`data` as a stream, for `Storage.put`."""
    yield data


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str | None


@dataclass(frozen=True)
class ByteRange:
    """Bytes `start`..`end`, both included (as in an HTTP `Range` header)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class StoredObject:
    """An open download: its chunks, the whole object's size and the range served."""

    chunks: AsyncIterator[bytes]
    size: int
    content_type: str | None
    byte_range: ByteRange | None = None


@dataclass(frozen=True)
class PresignedUpload:
    """Where and how a client sends an object straight to storage."""

    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class DownloadOptions:
    """How a download answers: its type and a ready `Content-Disposition` value."""

    content_type: str
    content_disposition: str


class Storage(Protocol):
    """What the media library needs from a store of objects."""

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> int:
        """Store the stream under `key` and return its size; past `max_bytes` nothing is
        kept and `ObjectTooLarge` is raised."""
        ...

    async def open(self, key: str, *, byte_range: ByteRange | None = None) -> StoredObject:
        """Read the object (or one range of it); `ObjectNotFound` if absent."""
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """Size and type of the object, or None when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; removing one that is not there is fine."""
        ...

    async def move(self, source: str, target: str) -> None:
        """Put the object at `source` under `target` instead (replacing what was there), at
        once and in the store; `ObjectNotFound` if there is nothing at `source`."""
        ...

    async def presigned_put(
        self, key: str, *, content_type: str, max_bytes: int, expires_at: datetime
    ) -> PresignedUpload:
        """A URL the client may PUT the object to until `expires_at`."""
        ...

    async def presigned_get(
        self, key: str, *, options: DownloadOptions, expires_at: datetime
    ) -> str:
        """A URL that downloads the object until `expires_at`, answered as `options` say."""
        ...

    async def close(self) -> None:
        """Release connections (called once at shutdown)."""
        ...
