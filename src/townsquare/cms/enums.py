"""Statuses of articles and the reasons revisions are written."""

from __future__ import annotations

from enum import StrEnum


class ArticleStatus(StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    published = "published"
    archived = "archived"


class RevisionReason(StrEnum):
    """Why a revision was written: the first save, a content edit, a publish, a restore."""

    created = "created"
    edited = "edited"
    published = "published"
    restored = "restored"
