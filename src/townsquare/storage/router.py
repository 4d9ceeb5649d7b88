"""Downloads and direct uploads of the local backend, at HMAC-signed expiring URLs.

The signature is the only credential (no session, so no CSRF): it names the method, the
key, the expiry and how the download answers, so a link cannot be bent to anything else.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import StreamingResponse

from townsquare.body_limit import bounds_its_own_body
from townsquare.storage.base import ByteRange, ObjectNotFound, ObjectTooLarge, Storage
from townsquare.storage.errors import (
    FileTooLarge,
    InvalidSignature,
    ObjectMissing,
    RangeNotSatisfiable,
)
from townsquare.storage.local import LocalStorage

router = APIRouter(prefix="/storage", tags=["storage"])

StorageKey = Annotated[str, Path(max_length=500, description="A key from a signed URL.")]
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Documents a browser could run are downloaded sandboxed; images, video and PDF display.
_SANDBOXED_TYPES = frozenset({"image/svg+xml"})


def _local_storage(request: Request) -> LocalStorage:
    storage: Storage = request.app.state.storage
    if not isinstance(storage, LocalStorage):
        raise ObjectMissing()
    return storage


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range of a `Range` header (None: the whole object); 416 when it
    cannot be served. Several ranges are answered with the whole object."""
    if not header or "," in header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
        return ByteRange(max(0, size - length), size - 1)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return ByteRange(start, end)


def download_headers(content_type: str, disposition: str) -> dict[str, str]:
    headers = {
        "Content-Type": content_type,
        "Content-Disposition": disposition,
        "X-Content-Type-Options": "nosniff",
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=300",
    }
    if content_type in _SANDBOXED_TYPES or disposition.startswith("attachment"):
        headers["Content-Security-Policy"] = "sandbox"
    return headers


@router.api_route("/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def download(key: StorageKey, request: Request) -> Response:
    storage = _local_storage(request)
    params = storage.signer.verify("GET", key, dict(request.query_params))
    if params is None or "content_type" not in params or "disposition" not in params:
        raise InvalidSignature()
    try:
        info = await storage.head(key)
    except ValueError as exc:
        raise ObjectMissing() from exc
    if info is None:
        raise ObjectMissing()
    headers = download_headers(params["content_type"], params["disposition"])
    byte_range = parse_range(request.headers.get("range"), info.size)
    length = info.size if byte_range is None else byte_range.length
    headers["Content-Length"] = str(length)
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{info.size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    try:
        stored = await storage.open(key, byte_range=byte_range)
    except ObjectNotFound as exc:
        raise ObjectMissing() from exc
    return StreamingResponse(stored.chunks, status_code=status, headers=headers)


@router.put("/{key:path}", include_in_schema=False, status_code=200)
@bounds_its_own_body
async def upload(key: StorageKey, request: Request) -> Response:
    storage = _local_storage(request)
    params = storage.signer.verify("PUT", key, dict(request.query_params))
    if params is None or "max_bytes" not in params:
        raise InvalidSignature()
    content_type = params.get("content_type", "")
    if request.headers.get("content-type", "").split(";")[0].strip() != content_type:
        raise InvalidSignature("The Content-Type header must be the one the upload was made for.")
    max_bytes = int(params["max_bytes"])
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise FileTooLarge()
    try:
        await storage.put(key, request.stream(), content_type=content_type, max_bytes=max_bytes)
    except ObjectTooLarge as exc:
        raise FileTooLarge() from exc
    return Response(status_code=200)
