"""Slugs made from titles and names."""

from __future__ import annotations

import re
import unicodedata

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_non_alnum = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_length: int = 80) -> str:
    """Lowercase ASCII words joined by hyphens; 'item' when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _non_alnum.sub("-", ascii_text.lower()).strip("-")
    slug = slug[:max_length].rstrip("-")
    return slug or "item"


def with_suffix(slug: str, n: int, max_length: int = 80) -> str:
    """`slug-n`, trimming the base so the result stays within `max_length`."""
    suffix = f"-{n}"
    return slug[: max_length - len(suffix)].rstrip("-") + suffix


def is_valid_slug(value: str) -> bool:
    return re.fullmatch(SLUG_PATTERN, value) is not None
