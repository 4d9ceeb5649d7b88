"""Management endpoints of the CMS: articles, revisions, publishing, categories, tags.

Every route needs `cms:write` (owners, admins, editors) in an org whose `cms` module is
on: drafts are unpublished work, so reading them is an editor's business too. Members
without it get 403, non-members 404. The public site reads through `public_router`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response, status

from townsquare.cms import publishing, schemas, service, taxonomy
from townsquare.cms.deps import CmsEditor, IfMatchVersion
from townsquare.cms.enums import ArticleStatus
from townsquare.cms.errors import VersionRequired
from townsquare.cms.models import Article
from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.errors import field_error
from townsquare.kit.pagination import Page, PageParams, page_params
from townsquare.kit.slugs import SLUG_PATTERN

router = APIRouter(prefix="/orgs/{org}", tags=["cms"], route_class=TransactionalRoute)

Paging = Annotated[PageParams, Depends(page_params)]


def _summary_fields(v: service.ArticleView) -> dict[str, object]:
    a = v.article
    return {
        "id": a.id,
        "title": a.title,
        "slug": a.slug,
        "excerpt": a.excerpt,
        "status": a.status,
        "author": schemas.AuthorRef(id=v.author.id, display_name=v.author.display_name)
        if v.author is not None
        else None,
        "category_id": a.category_id,
        "featured_media_id": a.featured_media_id,
        "tags": [schemas.TagRef.model_validate(t) for t in v.tags],
        "published_at": a.published_at,
        "scheduled_publish_at": a.scheduled_publish_at,
        "version": a.version,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    }


def _expected_version(body_version: int | None, if_match: int | None) -> int:
    """The version the client last saw, from the body or `If-Match` (428 with neither)."""
    if body_version is not None and if_match is not None and body_version != if_match:
        raise field_error("version", "Differs from the If-Match header.", "version_mismatch")
    expected = body_version if body_version is not None else if_match
    if expected is None:
        raise VersionRequired()
    return expected


_VERSION_RESPONSES: dict[int | str, dict[str, object]] = {
    409: {"description": "`edit_conflict`: the article changed since that version"},
    428: {"description": "`version_required`: neither `If-Match` nor `version` sent"},
}

OptionalVersionBody = Annotated[schemas.VersionedAction | None, Body()]


async def _article_out(
    session: DbSession, article: Article, response: Response | None = None
) -> schemas.Article:
    view = await service.view(session, article)
    if response is not None:
        response.headers["ETag"] = f'"{article.version}"'
    return schemas.Article(**_summary_fields(view), body=article.body)


# --- articles ------------------------------------------------------------------------------


@router.post(
    "/articles",
    response_model=schemas.Article,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "`slug_taken`: the explicit slug is in use"}},
)
async def create_article(
    ctx: CmsEditor,
    body: schemas.ArticleCreate,
    session: DbSession,
    settings: AppSettings,
    response: Response,
) -> schemas.Article:
    """Create a draft; the body is sanitized and the first revision written."""
    article = await service.create_article(
        session,
        ctx,
        title=body.title,
        slug=body.slug,
        excerpt=body.excerpt,
        body=body.body,
        category_id=body.category_id,
        featured_media_id=body.featured_media_id,
        settings=settings,
    )
    return await _article_out(session, article, response)


@router.get("/articles", response_model=Page[schemas.ArticleSummary])
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
) -> Page[schemas.ArticleSummary]:
    """Articles of every status, most recently changed first."""
    filters = service.ArticleFilters(
        status=status, category_slug=category, tag_slug=tag, author_id=author, q=q
    )
    views, total = await service.list_articles(session, ctx, filters, paging)
    items = [schemas.ArticleSummary(**_summary_fields(v)) for v in views]
    return Page[schemas.ArticleSummary].of(items, paging, total)


@router.get("/articles/by-slug/{slug}", response_model=schemas.Article)
async def get_article_by_slug(
    ctx: CmsEditor,
    slug: Annotated[str, Path(max_length=200, pattern=SLUG_PATTERN)],
    session: DbSession,
    response: Response,
) -> schemas.Article:
    """One article by its slug, whatever its status."""
    article = await service.get_article_by_slug(session, ctx, slug)
    return await _article_out(session, article, response)


@router.get("/articles/{article_id}", response_model=schemas.Article)
async def get_article(
    ctx: CmsEditor, article_id: uuid.UUID, session: DbSession, response: Response
) -> schemas.Article:
    """One article; `ETag` carries its version for a later `If-Match`."""
    article = await service.get_article(session, ctx, article_id)
    return await _article_out(session, article, response)


@router.patch(
    "/articles/{article_id}",
    response_model=schemas.Article,
    responses=_VERSION_RESPONSES,
)
async def update_article(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    body: schemas.ArticleUpdate,
    session: DbSession,
    settings: AppSettings,
    response: Response,
    if_match: IfMatchVersion,
) -> schemas.Article:
    """Change fields of the version the client last saw; a stale version is a 409."""
    article = await service.update_article(
        session,
        ctx,
        article_id,
        expected_version=_expected_version(body.version, if_match),
        changes=body.model_dump(exclude_unset=True, exclude={"version"}),
        settings=settings,
    )
    return await _article_out(session, article, response)


@router.delete("/articles/{article_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_article(ctx: CmsEditor, article_id: uuid.UUID, session: DbSession) -> None:
    """Delete an article, its revisions and its tags."""
    await service.delete_article(session, ctx, article_id)


_TRANSITION_RESPONSES: dict[int | str, dict[str, object]] = {
    409: {"description": "`invalid_status_transition`, or `edit_conflict` (a stale version)"},
    428: _VERSION_RESPONSES[428],
}


@router.post(
    "/articles/{article_id}/publish",
    response_model=schemas.Article,
    responses=_TRANSITION_RESPONSES,
)
async def publish_article(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    session: DbSession,
    settings: AppSettings,
    response: Response,
    if_match: IfMatchVersion,
    body: OptionalVersionBody = None,
) -> schemas.Article:
    """Publish now (from draft, scheduled or archived), writing a revision."""
    article = await publishing.publish_article(
        session,
        ctx,
        article_id,
        expected_version=_expected_version(body.version if body else None, if_match),
        settings=settings,
    )
    return await _article_out(session, article, response)


@router.post(
    "/articles/{article_id}/unpublish",
    response_model=schemas.Article,
    responses=_TRANSITION_RESPONSES,
)
async def unpublish_article(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    session: DbSession,
    response: Response,
    if_match: IfMatchVersion,
    body: OptionalVersionBody = None,
) -> schemas.Article:
    """Back to draft (from published, scheduled or archived)."""
    article = await publishing.unpublish_article(
        session,
        ctx,
        article_id,
        expected_version=_expected_version(body.version if body else None, if_match),
    )
    return await _article_out(session, article, response)


@router.post(
    "/articles/{article_id}/schedule",
    response_model=schemas.Article,
    responses={**_TRANSITION_RESPONSES, 422: {"description": "`publish_at_in_past`"}},
)
async def schedule_article(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    body: schemas.ArticleSchedule,
    session: DbSession,
    response: Response,
    if_match: IfMatchVersion,
) -> schemas.Article:
    """Publish at `publish_at` (future); a background duty publishes it within a minute."""
    article = await publishing.schedule_article(
        session,
        ctx,
        article_id,
        publish_at=body.publish_at,
        expected_version=_expected_version(body.version, if_match),
    )
    return await _article_out(session, article, response)


@router.post(
    "/articles/{article_id}/archive",
    response_model=schemas.Article,
    responses=_TRANSITION_RESPONSES,
)
async def archive_article(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    session: DbSession,
    response: Response,
    if_match: IfMatchVersion,
    body: OptionalVersionBody = None,
) -> schemas.Article:
    """Take the article off the public site; `/unpublish` or `/publish` bring it back."""
    article = await publishing.archive_article(
        session,
        ctx,
        article_id,
        expected_version=_expected_version(body.version if body else None, if_match),
    )
    return await _article_out(session, article, response)


@router.get("/articles/{article_id}/revisions", response_model=Page[schemas.ArticleRevision])
async def list_revisions(
    ctx: CmsEditor, article_id: uuid.UUID, session: DbSession, paging: Paging
) -> Page[schemas.ArticleRevision]:
    """The kept revisions (the newest `ARTICLE_REVISIONS_KEPT`), newest first, a page at
    a time."""
    revisions, total = await publishing.list_revisions(session, ctx, article_id, paging)
    items = [schemas.ArticleRevision.model_validate(r) for r in revisions]
    return Page[schemas.ArticleRevision].of(items, paging, total)


@router.post(
    "/articles/{article_id}/revisions/{number}/restore",
    response_model=schemas.Article,
    responses=_VERSION_RESPONSES,
)
async def restore_revision(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    number: Annotated[int, Path(ge=1, le=2**31 - 1)],
    session: DbSession,
    settings: AppSettings,
    response: Response,
    if_match: IfMatchVersion,
    body: OptionalVersionBody = None,
) -> schemas.Article:
    """Bring back a revision's content as a new revision and version."""
    article = await publishing.restore_revision(
        session,
        ctx,
        article_id,
        number,
        expected_version=_expected_version(body.version if body else None, if_match),
        settings=settings,
    )
    return await _article_out(session, article, response)


@router.put(
    "/articles/{article_id}/tags",
    response_model=schemas.Article,
    responses={
        **_VERSION_RESPONSES,
        422: {"description": "`tag_not_found`: an id is not a tag of this org"},
    },
)
async def replace_article_tags(
    ctx: CmsEditor,
    article_id: uuid.UUID,
    body: schemas.ArticleTagsReplace,
    session: DbSession,
    response: Response,
    if_match: IfMatchVersion,
) -> schemas.Article:
    """Replace the article's whole tag set by tag ids, atomically."""
    article = await service.replace_tags(
        session,
        ctx,
        article_id,
        body.tag_ids,
        expected_version=_expected_version(body.version, if_match),
    )
    return await _article_out(session, article, response)


# --- categories ----------------------------------------------------------------------------


@router.post("/categories", response_model=schemas.Category, status_code=status.HTTP_201_CREATED)
async def create_category(
    ctx: CmsEditor, body: schemas.CategoryCreate, session: DbSession
) -> schemas.Category:
    """A category, optionally under a parent category."""
    category = await taxonomy.create_category(
        session, ctx, name=body.name, slug=body.slug, parent_id=body.parent_id
    )
    return schemas.Category.model_validate(category)


@router.get("/categories", response_model=Page[schemas.Category])
async def list_categories(
    ctx: CmsEditor, session: DbSession, paging: Paging
) -> Page[schemas.Category]:
    """All categories by name (each with its `parent_id`)."""
    rows, total = await taxonomy.list_categories(session, ctx, paging)
    items = [schemas.Category.model_validate(r) for r in rows]
    return Page[schemas.Category].of(items, paging, total)


@router.get("/categories/{category_id}", response_model=schemas.Category)
async def get_category(
    ctx: CmsEditor, category_id: uuid.UUID, session: DbSession
) -> schemas.Category:
    category = await taxonomy.get_category(session, ctx, category_id)
    return schemas.Category.model_validate(category)


@router.patch(
    "/categories/{category_id}",
    response_model=schemas.Category,
    responses={422: {"description": "`category_cycle`: the new parent is itself or below it"}},
)
async def update_category(
    ctx: CmsEditor, category_id: uuid.UUID, body: schemas.CategoryUpdate, session: DbSession
) -> schemas.Category:
    """Rename, re-slug or move a category (`parent_id: null` makes it a top category)."""
    category = await taxonomy.update_category(
        session, ctx, category_id, body.model_dump(exclude_unset=True)
    )
    return schemas.Category.model_validate(category)


@router.delete(
    "/categories/{category_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "`category_in_use`: it has articles or subcategories"}},
)
async def delete_category(ctx: CmsEditor, category_id: uuid.UUID, session: DbSession) -> None:
    """Delete a category that has no articles and no subcategories."""
    await taxonomy.delete_category(session, ctx, category_id)


# --- tags ----------------------------------------------------------------------------------


@router.post("/tags", response_model=schemas.Tag, status_code=status.HTTP_201_CREATED)
async def create_tag(ctx: CmsEditor, body: schemas.TagCreate, session: DbSession) -> schemas.Tag:
    tag = await taxonomy.create_tag(session, ctx, name=body.name, slug=body.slug)
    return schemas.Tag.model_validate(tag)


@router.get("/tags", response_model=Page[schemas.Tag])
async def list_tags(ctx: CmsEditor, session: DbSession, paging: Paging) -> Page[schemas.Tag]:
    rows, total = await taxonomy.list_tags(session, ctx, paging)
    return Page[schemas.Tag].of([schemas.Tag.model_validate(r) for r in rows], paging, total)


@router.get("/tags/{tag_id}", response_model=schemas.Tag)
async def get_tag(ctx: CmsEditor, tag_id: uuid.UUID, session: DbSession) -> schemas.Tag:
    return schemas.Tag.model_validate(await taxonomy.get_tag(session, ctx, tag_id))


@router.patch("/tags/{tag_id}", response_model=schemas.Tag)
async def update_tag(
    ctx: CmsEditor, tag_id: uuid.UUID, body: schemas.TagUpdate, session: DbSession
) -> schemas.Tag:
    """Rename or re-slug a tag (neither may be null)."""
    tag = await taxonomy.update_tag(session, ctx, tag_id, body.model_dump(exclude_unset=True))
    return schemas.Tag.model_validate(tag)


@router.delete("/tags/{tag_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tag(ctx: CmsEditor, tag_id: uuid.UUID, session: DbSession) -> None:
    """Delete a tag; articles lose it."""
    await taxonomy.delete_tag(session, ctx, tag_id)
