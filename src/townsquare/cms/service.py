"""CMS business rules and their SQL: articles, revisions, publishing, categories, tags.

Every function takes the organization's id and filters by it, so an id of another org is
simply not found. Functions only flush; the request (or the duty's transaction) commits.
Rows about to change are read with a row lock (PostgreSQL; SQLite write transactions
already hold the database lock), so concurrent edits of one article serialize.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.cms.enums import ArticleStatus, RevisionReason
from townsquare.cms.models import (
    CATEGORY_SLUG_MAX,
    SLUG_MAX,
    TAG_SLUG_MAX,
    Article,
    ArticleRevision,
    ArticleTag,
    Category,
    Tag,
)
from townsquare.cms.sanitize import sanitize_html
from townsquare.db import is_unique_violation
from townsquare.errors import Conflict, NotFound, UnprocessableEntity, field_error
from townsquare.kit import clock
from townsquare.kit.pagination import PageParams
from townsquare.kit.slugs import slugify, with_suffix
from townsquare.orgs import service as orgs_service
from townsquare.orgs.models import Organization

# --- domain errors -------------------------------------------------------------------------


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


class EditConflict(Conflict):
    code = "edit_conflict"
    title = "Edit conflict"
    detail = "The article changed since you loaded it; reload it and apply your edit again."


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


# --- slugs ---------------------------------------------------------------------------------

SluggedT = TypeVar("SluggedT", Article, Category, Tag)
GENERATED_SLUG_ATTEMPTS = 25


async def _free_slug(
    session: AsyncSession,
    model: type[Article | Category | Tag],
    organization_id: uuid.UUID,
    base: str,
    max_length: int,
) -> str:
    """`base`, or the first of `base-2`, `base-3`… that no row of the org uses yet."""
    taken = set(
        await session.scalars(
            select(model.slug).where(
                model.organization_id == organization_id,
                or_(model.slug == base, model.slug.startswith(f"{base}-", autoescape=True)),
            )
        )
    )
    n = 1
    candidate = base
    while candidate in taken:
        n += 1
        candidate = with_suffix(base, n, max_length)
    return candidate


async def _insert_with_slug(
    session: AsyncSession,
    model: type[SluggedT],
    make: Callable[[str], SluggedT],
    *,
    organization_id: uuid.UUID,
    explicit_slug: str | None,
    source_text: str,
    max_length: int,
) -> SluggedT:
    """Insert the row made by `make(slug)`. A taken explicit slug is a 409 `slug_taken`;
    a generated one moves on to the next free suffix, also when a concurrent insert won."""
    if explicit_slug is not None:
        row = make(explicit_slug)
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            suggestion = await _free_slug(
                session, model, organization_id, explicit_slug, max_length
            )
            raise SlugTaken(extra={"suggestion": suggestion}) from exc
        return row
    base = slugify(source_text, max_length)
    for attempt in range(GENERATED_SLUG_ATTEMPTS + 1):
        if attempt < GENERATED_SLUG_ATTEMPTS:
            slug = await _free_slug(session, model, organization_id, base, max_length)
        else:
            # Under heavy contention for one base, stop counting and make it unique.
            slug = with_suffix(base, uuid.uuid4().int % 10**8, max_length)
        row = make(slug)
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            continue
        return row
    raise SlugTaken()


async def _change_slug(
    session: AsyncSession, row: Article | Category | Tag, slug: str, max_length: int
) -> None:
    """Give `row` the explicit `slug`; 409 `slug_taken` (with a suggestion) if taken."""
    if row.slug == slug:
        return
    previous, model, organization_id = row.slug, type(row), row.organization_id
    try:
        async with session.begin_nested():
            row.slug = slug
            await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        # The savepoint's rollback expired the row; the request fails with it.
        row.slug = previous
        suggestion = await _free_slug(session, model, organization_id, slug, max_length)
        raise SlugTaken(extra={"suggestion": suggestion}) from exc


# --- categories ----------------------------------------------------------------------------


async def list_categories(
    session: AsyncSession, organization_id: uuid.UUID, params: PageParams
) -> tuple[Sequence[Category], int]:
    """The org's categories by name, one page, and how many there are."""
    where = Category.organization_id == organization_id
    total = await session.scalar(select(func.count()).select_from(Category).where(where)) or 0
    rows = await session.scalars(
        select(Category)
        .where(where)
        .order_by(Category.name, Category.id)
        .offset(params.offset)
        .limit(params.per_page)
    )
    return rows.all(), total


async def get_category(
    session: AsyncSession,
    organization_id: uuid.UUID,
    category_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Category:
    """The org's category, or 404 `category_not_found`."""
    stmt = select(Category).where(
        Category.id == category_id, Category.organization_id == organization_id
    )
    if for_update:
        stmt = stmt.with_for_update()
    category = await session.scalar(stmt)
    if category is None:
        raise CategoryNotFound()
    return category


async def _check_category_ref(
    session: AsyncSession, organization_id: uuid.UUID, category_id: uuid.UUID, field: str
) -> None:
    found = await session.scalar(
        select(Category.id).where(
            Category.id == category_id, Category.organization_id == organization_id
        )
    )
    if found is None:
        raise field_error(field, "No such category in this organization.", "category_not_found")


async def _lock_category_tree(session: AsyncSession, organization_id: uuid.UUID) -> None:
    # Two concurrent re-parentings could each pass the cycle check and together close a
    # loop; they serialize on the org row (NO KEY UPDATE does not block inserts that
    # reference the org).
    await session.execute(
        select(Organization.id)
        .where(Organization.id == organization_id)
        .with_for_update(key_share=True)
    )


async def create_category(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    name: str,
    slug: str | None = None,
    parent_id: uuid.UUID | None = None,
) -> Category:
    """A new category; its slug is made from the name unless given."""
    if parent_id is not None:
        await _check_category_ref(session, organization_id, parent_id, "parent_id")
    return await _insert_with_slug(
        session,
        Category,
        lambda s: Category(organization_id=organization_id, name=name, slug=s, parent_id=parent_id),
        organization_id=organization_id,
        explicit_slug=slug,
        source_text=name,
        max_length=CATEGORY_SLUG_MAX,
    )


async def update_category(
    session: AsyncSession,
    organization_id: uuid.UUID,
    category_id: uuid.UUID,
    changes: dict[str, Any],
) -> Category:
    """Rename, re-slug or move a category; a move under itself or a descendant is a 422."""
    if "parent_id" in changes:
        await _lock_category_tree(session, organization_id)
    category = await get_category(session, organization_id, category_id, for_update=True)
    if "name" in changes and changes["name"] is not None:
        category.name = changes["name"]
    if "parent_id" in changes and changes["parent_id"] != category.parent_id:
        parent_id: uuid.UUID | None = changes["parent_id"]
        if parent_id is not None:
            await _check_category_ref(session, organization_id, parent_id, "parent_id")
            await _refuse_cycle(session, organization_id, category.id, parent_id)
        category.parent_id = parent_id
    if changes.get("slug") is not None:
        await _change_slug(session, category, changes["slug"], CATEGORY_SLUG_MAX)
    category.updated_at = clock.now()
    await session.flush()
    return category


async def _refuse_cycle(
    session: AsyncSession, organization_id: uuid.UUID, category_id: uuid.UUID, parent_id: uuid.UUID
) -> None:
    seen: set[uuid.UUID] = set()
    current: uuid.UUID | None = parent_id
    while current is not None:
        if current == category_id or current in seen:
            raise CategoryCycle()
        seen.add(current)
        current = await session.scalar(
            select(Category.parent_id).where(
                Category.id == current, Category.organization_id == organization_id
            )
        )


async def delete_category(
    session: AsyncSession, organization_id: uuid.UUID, category_id: uuid.UUID
) -> None:
    """Delete an empty category. One that still has articles or subcategories answers
    409 `category_in_use` (with both counts): nothing published moves silently."""
    category = await get_category(session, organization_id, category_id, for_update=True)
    articles = (
        await session.scalar(
            select(func.count()).select_from(Article).where(Article.category_id == category.id)
        )
        or 0
    )
    children = (
        await session.scalar(
            select(func.count()).select_from(Category).where(Category.parent_id == category.id)
        )
        or 0
    )
    if articles or children:
        raise CategoryInUse(extra={"articles": articles, "subcategories": children})
    await session.delete(category)
    await session.flush()


# --- tags ----------------------------------------------------------------------------------


async def list_tags(
    session: AsyncSession, organization_id: uuid.UUID, params: PageParams
) -> tuple[Sequence[Tag], int]:
    """The org's tags by name, one page, and how many there are."""
    where = Tag.organization_id == organization_id
    total = await session.scalar(select(func.count()).select_from(Tag).where(where)) or 0
    rows = await session.scalars(
        select(Tag)
        .where(where)
        .order_by(Tag.name, Tag.id)
        .offset(params.offset)
        .limit(params.per_page)
    )
    return rows.all(), total


async def get_tag(
    session: AsyncSession,
    organization_id: uuid.UUID,
    tag_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Tag:
    """The org's tag, or 404 `tag_not_found`."""
    stmt = select(Tag).where(Tag.id == tag_id, Tag.organization_id == organization_id)
    if for_update:
        stmt = stmt.with_for_update()
    tag = await session.scalar(stmt)
    if tag is None:
        raise TagNotFound()
    return tag


async def create_tag(
    session: AsyncSession, organization_id: uuid.UUID, *, name: str, slug: str | None = None
) -> Tag:
    """A new tag; its slug is made from the name unless given."""
    return await _insert_with_slug(
        session,
        Tag,
        lambda s: Tag(organization_id=organization_id, name=name, slug=s),
        organization_id=organization_id,
        explicit_slug=slug,
        source_text=name,
        max_length=TAG_SLUG_MAX,
    )


async def update_tag(
    session: AsyncSession, organization_id: uuid.UUID, tag_id: uuid.UUID, changes: dict[str, Any]
) -> Tag:
    """Rename or re-slug a tag."""
    tag = await get_tag(session, organization_id, tag_id, for_update=True)
    if changes.get("name") is not None:
        tag.name = changes["name"]
    if changes.get("slug") is not None:
        await _change_slug(session, tag, changes["slug"], TAG_SLUG_MAX)
    tag.updated_at = clock.now()
    await session.flush()
    return tag


async def delete_tag(session: AsyncSession, organization_id: uuid.UUID, tag_id: uuid.UUID) -> None:
    """Delete a tag; articles simply lose it."""
    tag = await get_tag(session, organization_id, tag_id, for_update=True)
    await session.delete(tag)
    await session.flush()


# --- articles: reading ---------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleView:
    """An article with what its responses show besides its own columns."""

    article: Article
    author: User | None
    tags: list[Tag]


async def get_article(
    session: AsyncSession,
    organization_id: uuid.UUID,
    article_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Article:
    """The org's article, or 404 `article_not_found` (also for another org's id)."""
    stmt = select(Article).where(
        Article.id == article_id, Article.organization_id == organization_id
    )
    if for_update:
        stmt = stmt.with_for_update()
    article = await session.scalar(stmt)
    if article is None:
        raise ArticleNotFound()
    return article


async def get_article_by_slug(
    session: AsyncSession, organization_id: uuid.UUID, slug: str
) -> Article:
    """The org's article with this slug, whatever its status."""
    article = await session.scalar(
        select(Article).where(Article.organization_id == organization_id, Article.slug == slug)
    )
    if article is None:
        raise ArticleNotFound()
    return article


async def views(session: AsyncSession, articles: Sequence[Article]) -> list[ArticleView]:
    """The articles with their authors and tags, loaded in two queries."""
    if not articles:
        return []
    author_ids = {a.author_id for a in articles if a.author_id is not None}
    authors: dict[uuid.UUID, User] = {}
    if author_ids:
        authors = {
            u.id: u for u in await session.scalars(select(User).where(User.id.in_(author_ids)))
        }
    tags_by_article: dict[uuid.UUID, list[Tag]] = {a.id: [] for a in articles}
    rows = await session.execute(
        select(ArticleTag.article_id, Tag)
        .join(Tag, Tag.id == ArticleTag.tag_id)
        .where(ArticleTag.article_id.in_(list(tags_by_article)))
        .order_by(Tag.slug)
    )
    for article_id, tag in rows:
        tags_by_article[article_id].append(tag)
    return [
        ArticleView(
            article=a,
            author=authors.get(a.author_id) if a.author_id is not None else None,
            tags=tags_by_article[a.id],
        )
        for a in articles
    ]


async def view(session: AsyncSession, article: Article) -> ArticleView:
    return (await views(session, [article]))[0]


@dataclass(frozen=True)
class ArticleFilters:
    status: ArticleStatus | None = None
    category_slug: str | None = None
    tag_slug: str | None = None
    author_id: uuid.UUID | None = None
    q: str | None = None


async def list_articles(
    session: AsyncSession, organization_id: uuid.UUID, filters: ArticleFilters, params: PageParams
) -> tuple[list[ArticleView], int]:
    """The org's articles of every status, most recently changed first, filtered."""
    stmt = select(Article).where(Article.organization_id == organization_id)
    if filters.status is not None:
        stmt = stmt.where(Article.status == filters.status)
    if filters.author_id is not None:
        stmt = stmt.where(Article.author_id == filters.author_id)
    if filters.category_slug is not None:
        stmt = stmt.where(
            Article.category_id.in_(
                select(Category.id).where(
                    Category.organization_id == organization_id,
                    Category.slug == filters.category_slug,
                )
            )
        )
    if filters.tag_slug is not None:
        stmt = stmt.where(
            Article.id.in_(
                select(ArticleTag.article_id)
                .join(Tag, Tag.id == ArticleTag.tag_id)
                .where(Tag.organization_id == organization_id, Tag.slug == filters.tag_slug)
            )
        )
    if filters.q:
        stmt = stmt.where(func.lower(Article.title).contains(filters.q.lower(), autoescape=True))
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    articles = (
        await session.scalars(
            stmt.order_by(Article.updated_at.desc(), Article.id.desc())
            .offset(params.offset)
            .limit(params.per_page)
        )
    ).all()
    return await views(session, articles), total


async def list_revisions(
    session: AsyncSession, organization_id: uuid.UUID, article_id: uuid.UUID
) -> Sequence[ArticleRevision]:
    """The article's kept revisions, newest first."""
    await get_article(session, organization_id, article_id)
    rows = await session.scalars(
        select(ArticleRevision)
        .where(ArticleRevision.article_id == article_id)
        .order_by(ArticleRevision.number.desc())
    )
    return rows.all()


# --- articles: writing ---------------------------------------------------------------------


async def _write_revision(
    session: AsyncSession,
    article: Article,
    reason: RevisionReason,
    editor_id: uuid.UUID | None,
    keep: int,
) -> ArticleRevision:
    """Snapshot the article's content and drop revisions beyond the newest `keep`.
    The caller holds the article's row lock, so numbers never collide."""
    last = await session.scalar(
        select(func.max(ArticleRevision.number)).where(ArticleRevision.article_id == article.id)
    )
    revision = ArticleRevision(
        article_id=article.id,
        organization_id=article.organization_id,
        number=(last or 0) + 1,
        title=article.title,
        excerpt=article.excerpt,
        body=article.body,
        reason=reason,
        editor_id=editor_id,
        created_at=clock.now(),
    )
    session.add(revision)
    await session.flush()
    oldest_kept = revision.number - max(1, keep) + 1
    if oldest_kept > 1:
        await session.execute(
            delete(ArticleRevision).where(
                ArticleRevision.article_id == article.id, ArticleRevision.number < oldest_kept
            )
        )
    return revision


def _touch(article: Article) -> None:
    article.version += 1
    article.updated_at = clock.now()


async def _mirror_publication(session: AsyncSession, article: Article) -> None:
    """Keep `article_tags.published_at` equal to the article's while it is published."""
    published_at = article.published_at if article.status == ArticleStatus.published else None
    await session.execute(
        update(ArticleTag)
        .where(ArticleTag.article_id == article.id)
        .values(published_at=published_at)
    )


async def create_article(
    session: AsyncSession,
    organization_id: uuid.UUID,
    actor_id: uuid.UUID,
    *,
    title: str,
    slug: str | None,
    excerpt: str,
    body: str,
    category_id: uuid.UUID | None,
    featured_media_id: uuid.UUID | None,
    revisions_kept: int,
) -> Article:
    """A new draft by `actor_id`, with its first revision; the body is sanitized."""
    if category_id is not None:
        await _check_category_ref(session, organization_id, category_id, "category_id")
    clean_body = sanitize_html(body)
    now = clock.now()
    article = await _insert_with_slug(
        session,
        Article,
        lambda s: Article(
            organization_id=organization_id,
            title=title,
            slug=s,
            excerpt=excerpt,
            body=clean_body,
            status=ArticleStatus.draft,
            author_id=actor_id,
            category_id=category_id,
            featured_media_id=featured_media_id,
            version=1,
            created_at=now,
            updated_at=now,
        ),
        organization_id=organization_id,
        explicit_slug=slug,
        source_text=title,
        max_length=SLUG_MAX,
    )
    await _write_revision(session, article, RevisionReason.created, actor_id, revisions_kept)
    return article


def check_version(article: Article, expected: int) -> None:
    """409 `edit_conflict` unless the client saw the article's current version."""
    if article.version != expected:
        raise EditConflict(extra={"current_version": article.version})


async def update_article(
    session: AsyncSession,
    organization_id: uuid.UUID,
    actor_id: uuid.UUID,
    article_id: uuid.UUID,
    *,
    expected_version: int,
    changes: dict[str, Any],
    revisions_kept: int,
) -> Article:
    """Apply `changes` if the client saw the current version; a content change writes a
    revision. The row lock makes a concurrent stale save wait and then fail."""
    article = await get_article(session, organization_id, article_id, for_update=True)
    check_version(article, expected_version)
    if "body" in changes and changes["body"] is not None:
        changes["body"] = sanitize_html(changes["body"])
    content_changed = False
    for field in ("title", "excerpt", "body"):
        value = changes.get(field)
        if value is not None and value != getattr(article, field):
            setattr(article, field, value)
            content_changed = True
    changed = content_changed
    if "category_id" in changes and changes["category_id"] != article.category_id:
        if changes["category_id"] is not None:
            await _check_category_ref(
                session, organization_id, changes["category_id"], "category_id"
            )
        article.category_id = changes["category_id"]
        changed = True
    if "featured_media_id" in changes and changes["featured_media_id"] != article.featured_media_id:
        article.featured_media_id = changes["featured_media_id"]
        changed = True
    if changes.get("slug") is not None and changes["slug"] != article.slug:
        await _change_slug(session, article, changes["slug"], SLUG_MAX)
        changed = True
    if not changed:
        return article
    _touch(article)
    await session.flush()
    if content_changed:
        await _write_revision(session, article, RevisionReason.edited, actor_id, revisions_kept)
    return article


def _transition(article: Article, allowed_from: set[ArticleStatus], target: str) -> None:
    if article.status not in allowed_from:
        raise InvalidStatusTransition(
            f"The article is {article.status.value}; it cannot be {target}.",
            extra={"article_status": article.status.value},
        )


async def _record_status_change(
    session: AsyncSession,
    article: Article,
    *,
    actor_id: uuid.UUID | None,
    action: str,
    data: dict[str, Any],
    revision_kept: int | None = None,
) -> None:
    """Save a status change: version bump, public mirror, a revision when asked, audit."""
    _touch(article)
    await session.flush()
    await _mirror_publication(session, article)
    if revision_kept is not None:
        await _write_revision(session, article, RevisionReason.published, actor_id, revision_kept)
    await orgs_service.record_audit(
        session,
        organization_id=article.organization_id,
        actor_id=actor_id,
        action=action,
        target_type="article",
        target_id=article.id,
        data={"slug": article.slug, **data},
    )


async def _set_published(
    session: AsyncSession,
    article: Article,
    *,
    published_at: datetime,
    actor_id: uuid.UUID | None,
    revisions_kept: int,
    scheduled: bool,
) -> None:
    article.status = ArticleStatus.published
    article.published_at = published_at
    article.scheduled_publish_at = None
    await _record_status_change(
        session,
        article,
        actor_id=actor_id,
        action="article.published",
        data={"scheduled": scheduled},
        revision_kept=revisions_kept,
    )


async def publish_article(
    session: AsyncSession,
    organization_id: uuid.UUID,
    actor_id: uuid.UUID,
    article_id: uuid.UUID,
    *,
    revisions_kept: int,
) -> Article:
    """Publish now: status, revision and audit entry in the caller's one transaction."""
    article = await get_article(session, organization_id, article_id, for_update=True)
    _transition(
        article,
        {ArticleStatus.draft, ArticleStatus.scheduled, ArticleStatus.archived},
        "published",
    )
    await _set_published(
        session,
        article,
        published_at=clock.now(),
        actor_id=actor_id,
        revisions_kept=revisions_kept,
        scheduled=False,
    )
    return article


async def unpublish_article(
    session: AsyncSession, organization_id: uuid.UUID, actor_id: uuid.UUID, article_id: uuid.UUID
) -> Article:
    """Back to draft from published, scheduled or archived; the public no longer sees it."""
    article = await get_article(session, organization_id, article_id, for_update=True)
    _transition(
        article,
        {ArticleStatus.published, ArticleStatus.scheduled, ArticleStatus.archived},
        "unpublished",
    )
    previous = article.status
    article.status = ArticleStatus.draft
    article.published_at = None
    article.scheduled_publish_at = None
    await _record_status_change(
        session,
        article,
        actor_id=actor_id,
        action="article.unpublished",
        data={"from": previous.value},
    )
    return article


async def schedule_article(
    session: AsyncSession,
    organization_id: uuid.UUID,
    actor_id: uuid.UUID,
    article_id: uuid.UUID,
    *,
    publish_at: datetime,
) -> Article:
    """Publish at `publish_at` (in the future) through the `cms.publish_scheduled` duty."""
    if publish_at <= clock.now():
        raise PublishAtInPast()
    article = await get_article(session, organization_id, article_id, for_update=True)
    _transition(
        article,
        {ArticleStatus.draft, ArticleStatus.scheduled, ArticleStatus.archived},
        "scheduled",
    )
    article.status = ArticleStatus.scheduled
    article.scheduled_publish_at = publish_at
    article.published_at = None
    await _record_status_change(
        session,
        article,
        actor_id=actor_id,
        action="article.scheduled",
        data={"publish_at": publish_at.isoformat()},
    )
    return article


async def archive_article(
    session: AsyncSession, organization_id: uuid.UUID, actor_id: uuid.UUID, article_id: uuid.UUID
) -> Article:
    """Take an article off the public site and out of the working set; `/unpublish`
    brings it back as a draft, `/publish` republishes it."""
    article = await get_article(session, organization_id, article_id, for_update=True)
    _transition(
        article,
        {ArticleStatus.draft, ArticleStatus.scheduled, ArticleStatus.published},
        "archived",
    )
    previous = article.status
    article.status = ArticleStatus.archived
    article.scheduled_publish_at = None
    await _record_status_change(
        session,
        article,
        actor_id=actor_id,
        action="article.archived",
        data={"from": previous.value},
    )
    return article


async def delete_article(
    session: AsyncSession, organization_id: uuid.UUID, actor_id: uuid.UUID, article_id: uuid.UUID
) -> None:
    """Delete an article with its revisions and tags, leaving an audit entry."""
    article = await get_article(session, organization_id, article_id, for_update=True)
    await orgs_service.record_audit(
        session,
        organization_id=organization_id,
        actor_id=actor_id,
        action="article.deleted",
        target_type="article",
        target_id=article.id,
        data={"slug": article.slug, "title": article.title, "status": article.status.value},
    )
    await session.execute(delete(Article).where(Article.id == article.id))
    session.expunge(article)


async def restore_revision(
    session: AsyncSession,
    organization_id: uuid.UUID,
    actor_id: uuid.UUID,
    article_id: uuid.UUID,
    number: int,
    *,
    revisions_kept: int,
) -> Article:
    """Bring back a revision's title, excerpt and body as a new revision and version."""
    article = await get_article(session, organization_id, article_id, for_update=True)
    revision = await session.scalar(
        select(ArticleRevision).where(
            ArticleRevision.article_id == article.id, ArticleRevision.number == number
        )
    )
    if revision is None:
        raise RevisionNotFound()
    article.title = revision.title
    article.excerpt = revision.excerpt
    article.body = revision.body
    _touch(article)
    await session.flush()
    await _write_revision(session, article, RevisionReason.restored, actor_id, revisions_kept)
    return article


async def replace_tags(
    session: AsyncSession,
    organization_id: uuid.UUID,
    article_id: uuid.UUID,
    tag_ids: Sequence[uuid.UUID],
) -> Article:
    """Make `tag_ids` the article's whole tag set, in one transaction. An id that is not a
    tag of this organization is a 422 `tag_not_found` and nothing changes."""
    article = await get_article(session, organization_id, article_id, for_update=True)
    wanted = list(dict.fromkeys(tag_ids))
    if wanted:
        found = set(
            await session.scalars(
                select(Tag.id).where(Tag.organization_id == organization_id, Tag.id.in_(wanted))
            )
        )
        missing = [str(t) for t in wanted if t not in found]
        if missing:
            error = field_error("tag_ids", "No such tag in this organization.", "tag_not_found")
            error.extra["missing"] = missing
            raise error
    await session.execute(delete(ArticleTag).where(ArticleTag.article_id == article.id))
    if wanted:
        published_at = article.published_at if article.status == ArticleStatus.published else None
        await session.execute(
            insert(ArticleTag),
            [
                {
                    "article_id": article.id,
                    "tag_id": tag_id,
                    "organization_id": organization_id,
                    "published_at": published_at,
                }
                for tag_id in wanted
            ],
        )
    _touch(article)
    await session.flush()
    return article


# --- scheduled publishing ------------------------------------------------------------------


async def publish_due_articles(
    session: AsyncSession, *, now: datetime, limit: int, revisions_kept: int
) -> int:
    """Publish up to `limit` scheduled articles whose time has come, each with a revision
    and an audit entry. Rows are claimed with SKIP LOCKED, and the status is checked
    again under the lock, so concurrent workers never publish one article twice."""
    due = (
        await session.scalars(
            select(Article)
            .where(
                Article.status == ArticleStatus.scheduled,
                Article.scheduled_publish_at <= now,
            )
            .order_by(Article.scheduled_publish_at, Article.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).all()
    published = 0
    for article in due:
        if article.status != ArticleStatus.scheduled or article.scheduled_publish_at is None:
            continue
        await _set_published(
            session,
            article,
            published_at=article.scheduled_publish_at,
            actor_id=None,
            revisions_kept=revisions_kept,
            scheduled=True,
        )
        published += 1
    return published
