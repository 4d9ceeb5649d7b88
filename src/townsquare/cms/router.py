"""Management endpoints of the CMS: articles, revisions, publishing, categories, tags.

Every route needs `cms:write` (owners, admins, editors) in an org whose `cms` module is
on: drafts are unpublished work, so reading them is an editor's business too. Members
without it get 403, non-members 404. The public site reads through `public_router`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from townsquare.cms import service
from townsquare.cms.deps import CmsEditor, IfMatchVersion
from townsquare.cms.enums import ArticleStatus
from townsquare.cms.models import Article
from townsquare.cms.schemas import (
    ArticleCreate,
    ArticleOut,
    ArticleSchedule,
    ArticleSummary,
    ArticleTagsReplace,
    ArticleUpdate,
    AuthorRef,
    CategoryCreate,
    CategoryOut,
    CategoryUpdate,
    RevisionOut,
    TagCreate,
    TagOut,
    TagRef,
    TagUpdate,
)
from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.errors import AppError, field_error
from townsquare.kit.pagination import Page, PageParams, page_params
from townsquare.kit.slugs import SLUG_PATTERN

router = APIRouter(prefix="/orgs/{org}", tags=["cms"], route_class=TransactionalRoute)

Paging = Annotated[PageParams, Depends(page_params)]


class VersionRequired(AppError):
    status = 428
    code = "version_required"
    title = "Version required"
    detail = "Send the version you last saw in `If-Match` or as `version` in the body."


def _summary_fields(v: service.ArticleView) -> dict[str, object]:
    a = v.article
    return {
        "id": a.id,
        "title": a.title,
        "slug": a.slug,
        "excerpt": a.excerpt,
        "status": a.status,
        "author": AuthorRef(id=v.author.id, display_name=v.author.display_name)
        if v.author is not None
        else None,
        "category_id": a.category_id,
        "featured_media_id": a.featured_media_id,
        "tags": [TagRef.model_validate(t) for t in v.tags],
        "published_at": a.published_at,
        "scheduled_publish_at": a.scheduled_publish_at,
        "version": a.version,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    }


async def _article_out(
    session: DbSession, article: Article, response: Response | None = None
) -> ArticleOut:
    view = await service.view(session, article)
    if response is not None:
        response.headers["ETag"] = f'"{article.version}"'
    return ArticleOut(**_summary_fields(view), body=article.body)


# --- articles ------------------------------------------------------------------------------


@router.post(
    "/articles",
    response_model=ArticleOut,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "`slug_taken`: the explicit slug is in use"}},
)
async def create_article(
    ctx: CmsEditor,
    body: ArticleCreate,
    session: DbSession,
    settings: AppSettings,
    response: Response,
) -> ArticleOut:
    """Create a draft; the body is sanitized and the first revision written."""
    article = await service.create_article(
        session,
        ctx.org.id,
        ctx.user.id,
        title=body.title,
        slug=body.slug,
        excerpt=body.excerpt,
        body=body.body,
        category_id=body.category_id,
        featured_media_id=body.featured_media_id,
        revisions_kept=settings.ARTICLE_REVISIONS_KEPT,
    )
    return await _article_out(session, article, response)


@router.get("/articles", response_model=Page[ArticleSummary])
async def list_articles(
    ctx: CmsEditor,
    session: DbSession,
    paging: Paging,
    status: ArticleStatus | None = None,
    category: Annotated[
        str | None, Query(max_length=100, pattern=SLUG_PATTERN, description="Category slug")
    ] = None,
    tag: Annotated[
        str | None, Query(max_length=64, pattern=SLUG_PATTERN, description="Tag slug")
    ] = None,
    author: Annotated[uuid.UUID | None, Query(description="Author's user id")] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=r"^[^\x00-\x1f]*$", description="Words in the title"),
    ] = None,
) -> Page[ArticleSummary]:
    """Articles of every status, most recently changed first."""
    views, total = await service.list_articles(
        session,
        ctx.org.id,
        service.ArticleFilters(
            status=status, category_slug=category, tag_slug=tag, author_id=author, q=q
        ),
        paging,
    )
    return Page[ArticleSummary](
        items=[ArticleSummary(**_summary_fields(v)) for v in views],
        page=paging.page,
        per_page=paging.per_page,
        total=total,
    )


@router.get("/articles/by-slug/{slug}", response_model=ArticleOut)
async def get_article_by_slug(
    ctx: CmsEditor,
    slug: Annotated[str, Path(max_length=200, pattern=SLUG_PATTERN)],
    session: DbSession,
    response: Response,
) -> ArticleOut:
    """One article by its slug, whatever its status."""
    article = await service.get_article_by_slug(session, ctx.org.id, slug)
    return await _article_out(session, article, response)


@router.get("/articles/{article_id}", response_model=ArticleOut)
async def get_article(
    ctx: CmsEditor, article_id: uuid.UUID, session: DbSession, response: Response
) -> ArticleOut:
    """One article; `ETag` carries its version for a later `If-Match`."""
    article = await service.get_article(session, ctx.org.id, article_id)
    return await _article_out(session, article, response)


@router.patch(
    "/articles/{article_id}",
    response_model=ArticleOut,
    responses={
        409: {"description": "`edit_conflict`: the article changed since that version"},
        428: {"description": "`version_required`: neither `If-Match` nor `version` sent"},
    },
)
async def update_article(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    body: ArticleUpdate,
    session: DbSession,
    settings: AppSettings,
    response: Response,
    if_match: IfMatchVersion,
) -> ArticleOut:
    """Change fields of the version the client last saw; a stale version is a 409."""
    if body.version is not None and if_match is not None and body.version != if_match:
        raise field_error("version", "Differs from the If-Match header.", "version_mismatch")
    expected = body.version if body.version is not None else if_match
    if expected is None:
        raise VersionRequired()
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    article = await service.update_article(
        session,
        ctx.org.id,
        ctx.user.id,
        article_id,
        expected_version=expected,
        changes=changes,
        revisions_kept=settings.ARTICLE_REVISIONS_KEPT,
    )
    return await _article_out(session, article, response)


@router.delete("/articles/{article_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_article(ctx: CmsEditor, article_id: uuid.UUID, session: DbSession) -> None:
    """Delete an article, its revisions and its tags."""
    await service.delete_article(session, ctx.org.id, ctx.user.id, article_id)


_TRANSITION_RESPONSES: dict[int | str, dict[str, object]] = {
    409: {"description": "`invalid_status_transition`"}
}


@router.post(
    "/articles/{article_id}/publish", response_model=ArticleOut, responses=_TRANSITION_RESPONSES
)
async def publish_article(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    session: DbSession,
    settings: AppSettings,
    response: Response,
) -> ArticleOut:
    """Publish now (from draft, scheduled or archived), writing a revision."""
    article = await service.publish_article(
        session,
        ctx.org.id,
        ctx.user.id,
        article_id,
        revisions_kept=settings.ARTICLE_REVISIONS_KEPT,
    )
    return await _article_out(session, article, response)


@router.post(
    "/articles/{article_id}/unpublish", response_model=ArticleOut, responses=_TRANSITION_RESPONSES
)
async def unpublish_article(
    ctx: CmsEditor, article_id: uuid.UUID, session: DbSession, response: Response
) -> ArticleOut:
    """Back to draft (from published, scheduled or archived)."""
    article = await service.unpublish_article(session, ctx.org.id, ctx.user.id, article_id)
    return await _article_out(session, article, response)


@router.post(
    "/articles/{article_id}/schedule",
    response_model=ArticleOut,
    responses={
        **_TRANSITION_RESPONSES,
        422: {"description": "`publish_at_in_past`"},
    },
)
async def schedule_article(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    body: ArticleSchedule,
    session: DbSession,
    response: Response,
) -> ArticleOut:
    """Publish at `publish_at` (future); a background duty publishes it within a minute."""
    article = await service.schedule_article(
        session, ctx.org.id, ctx.user.id, article_id, publish_at=body.publish_at
    )
    return await _article_out(session, article, response)


@router.post(
    "/articles/{article_id}/archive", response_model=ArticleOut, responses=_TRANSITION_RESPONSES
)
async def archive_article(
    ctx: CmsEditor, article_id: uuid.UUID, session: DbSession, response: Response
) -> ArticleOut:
    """Take the article off the public site; `/unpublish` or `/publish` bring it back."""
    article = await service.archive_article(session, ctx.org.id, ctx.user.id, article_id)
    return await _article_out(session, article, response)


@router.get("/articles/{article_id}/revisions", response_model=list[RevisionOut])
async def list_revisions(
    ctx: CmsEditor, article_id: uuid.UUID, session: DbSession
) -> list[RevisionOut]:
    """The kept revisions (the newest `ARTICLE_REVISIONS_KEPT`), newest first."""
    revisions = await service.list_revisions(session, ctx.org.id, article_id)
    return [RevisionOut.model_validate(r) for r in revisions]


@router.post("/articles/{article_id}/revisions/{number}/restore", response_model=ArticleOut)
async def restore_revision(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    number: Annotated[int, Path(ge=1, le=2**31 - 1)],
    session: DbSession,
    settings: AppSettings,
    response: Response,
) -> ArticleOut:
    """Bring back a revision's content as a new revision and version."""
    article = await service.restore_revision(
        session,
        ctx.org.id,
        ctx.user.id,
        article_id,
        number,
        revisions_kept=settings.ARTICLE_REVISIONS_KEPT,
    )
    return await _article_out(session, article, response)


@router.put(
    "/articles/{article_id}/tags",
    response_model=ArticleOut,
    responses={422: {"description": "`tag_not_found`: an id is not a tag of this org"}},
)
async def replace_article_tags(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    body: ArticleTagsReplace,
    session: DbSession,
    response: Response,
) -> ArticleOut:
    """Replace the article's whole tag set by tag ids, atomically."""
    article = await service.replace_tags(session, ctx.org.id, article_id, body.tag_ids)
    return await _article_out(session, article, response)


# --- categories ----------------------------------------------------------------------------


@router.post("/categories", response_model=CategoryOut, status_code=status.HTTP_201_CREATED)
async def create_category(ctx: CmsEditor, body: CategoryCreate, session: DbSession) -> CategoryOut:
    """A category, optionally under a parent category."""
    category = await service.create_category(
        session, ctx.org.id, name=body.name, slug=body.slug, parent_id=body.parent_id
    )
    return CategoryOut.model_validate(category)


@router.get("/categories", response_model=Page[CategoryOut])
async def list_categories(ctx: CmsEditor, session: DbSession, paging: Paging) -> Page[CategoryOut]:
    """All categories by name (each with its `parent_id`)."""
    rows, total = await service.list_categories(session, ctx.org.id, paging)
    return Page[CategoryOut](
        items=[CategoryOut.model_validate(r) for r in rows],
        page=paging.page,
        per_page=paging.per_page,
        total=total,
    )


@router.get("/categories/{category_id}", response_model=CategoryOut)
async def get_category(ctx: CmsEditor, category_id: uuid.UUID, session: DbSession) -> CategoryOut:
    return CategoryOut.model_validate(await service.get_category(session, ctx.org.id, category_id))


@router.patch(
    "/categories/{category_id}",
    response_model=CategoryOut,
    responses={422: {"description": "`category_cycle`: the new parent is itself or below it"}},
)
async def update_category(
    ctx: CmsEditor, category_id: uuid.UUID, body: CategoryUpdate, session: DbSession
) -> CategoryOut:
    """Rename, re-slug or move a category (`parent_id: null` makes it a top category)."""
    category = await service.update_category(
        session, ctx.org.id, category_id, body.model_dump(exclude_unset=True)
    )
    return CategoryOut.model_validate(category)


@router.delete(
    "/categories/{category_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "`category_in_use`: it has articles or subcategories"}},
)
async def delete_category(ctx: CmsEditor, category_id: uuid.UUID, session: DbSession) -> None:
    """Delete a category that has no articles and no subcategories."""
    await service.delete_category(session, ctx.org.id, category_id)


# --- tags ----------------------------------------------------------------------------------


@router.post("/tags", response_model=TagOut, status_code=status.HTTP_201_CREATED)
async def create_tag(ctx: CmsEditor, body: TagCreate, session: DbSession) -> TagOut:
    tag = await service.create_tag(session, ctx.org.id, name=body.name, slug=body.slug)
    return TagOut.model_validate(tag)


@router.get("/tags", response_model=Page[TagOut])
async def list_tags(ctx: CmsEditor, session: DbSession, paging: Paging) -> Page[TagOut]:
    rows, total = await service.list_tags(session, ctx.org.id, paging)
    return Page[TagOut](
        items=[TagOut.model_validate(r) for r in rows],
        page=paging.page,
        per_page=paging.per_page,
        total=total,
    )


@router.get("/tags/{tag_id}", response_model=TagOut)
async def get_tag(ctx: CmsEditor, tag_id: uuid.UUID, session: DbSession) -> TagOut:
    return TagOut.model_validate(await service.get_tag(session, ctx.org.id, tag_id))


@router.patch("/tags/{tag_id}", response_model=TagOut)
async def update_tag(
    ctx: CmsEditor, tag_id: uuid.UUID, body: TagUpdate, session: DbSession
) -> TagOut:
    tag = await service.update_tag(session, ctx.org.id, tag_id, body.model_dump(exclude_unset=True))
    return TagOut.model_validate(tag)


@router.delete("/tags/{tag_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tag(ctx: CmsEditor, tag_id: uuid.UUID, session: DbSession) -> None:
    """Delete a tag; articles lose it."""
    await service.delete_tag(session, ctx.org.id, tag_id)
