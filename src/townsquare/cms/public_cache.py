"""HTTP caching of the public reads: validators, conditional requests, `Cache-Control`.

Every public 200 carries a weak `ETag`, a `Last-Modified` when there is a time to give, and
`Cache-Control: public, max-age=..., stale-while-revalidate=...` (settings
`PUBLIC_CACHE_MAX_AGE_SECONDS`, `PUBLIC_CACHE_STALE_SECONDS`), so a CDN or browser in
front of the API absorbs most reads and revalidates the rest. A request whose
`If-None-Match` names the current ETag (or, without `If-None-Match`, whose
`If-Modified-Since` is not older than `Last-Modified`) answers 304 with the same headers
and no body, as RFC 9110 section 13 orders the two.

ETags are weak (`W/"..."`): equal ETags mean the same JSON, not the same bytes through any
proxy that recompresses. They are a CRC-32 and the length of what they describe: this runs
on every public read, CRC-32 costs a fifth of a cryptographic hash, and a weak validator
needs no collision resistance against the org's own editors.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from townsquare.config import Settings

# Part of every ETag: change it when the public JSON's shape changes, so that a cache does
# not keep a body of the old shape as current.
SHAPE = b"1"


_SEED = zlib.crc32(SHAPE)


def etag_of(data: bytes, prefix: str = "") -> str:
    """The weak ETag of `data` (a response body, or values a body is made of), after
    `prefix` (values that are unique already)."""
    return f'W/"{prefix}{len(data):x}-{zlib.crc32(data, _SEED):08x}"'


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(value: datetime) -> str:
    """`value` as an HTTP date (`Wed, 02 Dec 2026 01:42:00 GMT`): what
    `email.utils.format_datetime(..., usegmt=True)` writes, in a third of its time."""
    t = value.astimezone(UTC)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )


class Conditions:
    """A request's `If-None-Match` and `If-Modified-Since`, read from the raw headers."""

    __slots__ = ("if_modified_since", "if_none_match")

    def __init__(self, if_none_match: bytes | None, if_modified_since: bytes | None) -> None:
        self.if_none_match = if_none_match
        self.if_modified_since = if_modified_since

    def not_modified(self, etag: str, last_modified: datetime | None) -> bool:
        """Whether the client's copy is current, by weak comparison of the ETags, or by
        date when it sent no `If-None-Match`."""
        if self.if_none_match is not None:
            wanted = _opaque(etag)
            for candidate in self.if_none_match.decode("latin-1").split(","):
                candidate = candidate.strip()
                if candidate == "*" or _opaque(candidate) == wanted:
                    return True
            return False
        if self.if_modified_since is None or last_modified is None:
            return False
        try:
            since = parsedate_to_datetime(self.if_modified_since.decode("latin-1"))
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            return False
        return last_modified.replace(microsecond=0) <= since


def _opaque(etag: str) -> str:
    return etag[2:] if etag.startswith("W/") else etag


def conditions(request: Request) -> Conditions | None:
    """The request's conditions, or None when it sent neither header (most requests)."""
    if_none_match = if_modified_since = None
    for name, value in request.scope["headers"]:
        if name == b"if-none-match":
            if_none_match = value if if_none_match is None else if_none_match + b"," + value
        elif name == b"if-modified-since":
            if_modified_since = value
    if if_none_match is None and if_modified_since is None:
        return None
    return Conditions(if_none_match, if_modified_since)


_cache_control: dict[tuple[int, int], str] = {}


def cache_control(settings: Settings) -> str:
    key = (settings.PUBLIC_CACHE_MAX_AGE_SECONDS, settings.PUBLIC_CACHE_STALE_SECONDS)
    found = _cache_control.get(key)
    if found is None:
        found = _cache_control[key] = f"public, max-age={key[0]}, stale-while-revalidate={key[1]}"
    return found


def headers(request: Request, etag: str | None, last_modified: datetime | None) -> dict[str, str]:
    """The caching headers of a public answer (a 200, its 304, or a redirect)."""
    found = {"cache-control": cache_control(request.app.state.settings)}
    if etag is not None:
        found["etag"] = etag
    if last_modified is not None:
        found["last-modified"] = http_date(last_modified)
    return found


def not_modified(request: Request, etag: str, last_modified: datetime | None) -> Response:
    return Response(status_code=304, headers=headers(request, etag, last_modified))


def respond(
    request: Request,
    body: bytes,
    media_type: str,
    *,
    etag: str | None = None,
    last_modified: datetime | None = None,
    found: Conditions | None = None,
) -> Response:
    """`body` as a cacheable 200, or a 304 when the request's conditions say the client
    has it; the ETag defaults to the body's."""
    etag = etag or etag_of(body)
    if found is not None and found.not_modified(etag, last_modified):
        return not_modified(request, etag, last_modified)
    return Response(
        content=body, media_type=media_type, headers=headers(request, etag, last_modified)
    )


def newest(*times: Any) -> datetime | None:
    """The latest of the given times, ignoring missing ones."""
    present = [t for t in times if t is not None]
    return max(present) if present else None
