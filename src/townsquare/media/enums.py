"""States of media items and their variants."""

from __future__ import annotations

from enum import StrEnum


class MediaStatus(StrEnum):
    pending = "pending"
    """A direct upload was reserved (its size counts against the quota) but not completed."""
    ready = "ready"


class VariantsStatus(StrEnum):
    none = "none"
    """Not an image that gets variants (PDF, video, SVG)."""
    pending = "pending"
    done = "done"
    failed = "failed"
