"""Errors of the CMS, each with its HTTP status and stable `code`."""

from __future__ import annotations

from typing import Self

from townsquare.errors import AppError, Conflict, NotFound, UnprocessableEntity


class ArticleNotFound(NotFound):
    code = "article_not_found"
    detail = "No such article."


class RevisionNotFound(NotFound):
    code = "revision_not_found"
    detail = "No such revision of this article."


class CategoryNotFound(NotFound):
    code = "category_not_found"
    detail = "No such category."


class TagNotFound(NotFound):
    code = "tag_not_found"
    detail = "No such tag."


class SlugTaken(Conflict):
    code = "slug_taken"
    title = "Slug taken"
    detail = "Another item of this organization already uses this slug."

    @classmethod
    def suggesting(cls, suggestion: str) -> Self:
        """The 409 for a taken explicit slug, naming a free one in `suggestion`."""
        return cls(extra={"suggestion": suggestion})


class EditConflict(Conflict):
    code = "edit_conflict"
    title = "Edit conflict"
    detail = "The article changed since you loaded it; reload it and apply your edit again."


class VersionRequired(AppError):
    status = 428
    code = "version_required"
    title = "Version required"
    detail = "Send the version you last saw in `If-Match` or as `version` in the body."


class InvalidStatusTransition(Conflict):
    code = "invalid_status_transition"
    title = "Invalid status transition"


class CategoryInUse(Conflict):
    code = "category_in_use"
    title = "Category in use"
    detail = "Move its articles and subcategories elsewhere before deleting the category."


class CategoryCycle(UnprocessableEntity):
    code = "category_cycle"
    title = "Category cycle"
    detail = "A category cannot be its own parent or the parent of one of its ancestors."


class PublishAtInPast(UnprocessableEntity):
    code = "publish_at_in_past"
    title = "Publish time in the past"
    detail = "`publish_at` must be in the future."
