"""Client filenames made safe to show and to put in a header; they never reach a path."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from townsquare.media.models import FILENAME_MAX

_UNSAFE = set('/\\"') | {chr(c) for c in range(32)} | {"\x7f"}


def clean_filename(raw: str | None) -> str:
    """The last path segment without separators, quotes or control characters (also the
    Unicode format characters that can flip how a name reads); `file` when nothing is left."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        c for c in name if c not in _UNSAFE and unicodedata.category(c) not in {"Cc", "Cf"}
    )
    name = name.strip().lstrip(".").strip()
    if len(name) > FILENAME_MAX:
        stem, dot, extension = name.rpartition(".")
        if dot and len(extension) < 16:
            name = stem[: FILENAME_MAX - len(extension) - 1] + "." + extension
        else:
            name = name[:FILENAME_MAX]
    return name or "file"


def content_disposition(filename: str, *, inline: bool) -> str:
    """`inline` or `attachment` with an ASCII `filename="..."` fallback and the exact name
    as `filename*=UTF-8''...` (RFC 6266), neither able to break out of the header."""
    name = clean_filename(filename)
    ascii_name = (
        unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().replace('"', "")
        or "file"
    )
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
