"""Articles: create, read, list, update, delete, and their tag sets.

Every function takes the caller's `OrgContext` and filters by `ctx.org.id`, so an id of
another organization is simply not found. Functions only flush; the request commits.
Rows about to change are read with a row lock (PostgreSQL; SQLite write transactions
already hold the database lock), so concurrent edits of one article serialize. Status
changes, scheduling and revisions live in `publishing`; categories and tags in `taxonomy`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.cms import old_slugs, publishing, taxonomy
from townsquare.cms.enums import ArticleStatus, RevisionReason
from townsquare.cms.errors import ArticleNotFound, SlugTaken
from townsquare.cms.models import SLUG_MAX, Article, ArticleTag, Category, Tag
from townsquare.cms.sanitize import sanitize_html
from townsquare.config import Settings
from townsquare.db_slugs import SlugScope
from townsquare.errors import field_error
from townsquare.kit import clock
from townsquare.kit.pagination import PageParams, paginate
from townsquare.media import service as media_service
from townsquare.orgs import audit
from townsquare.orgs.context import OrgContext


def _article_slugs(organization_id: uuid.UUID) -> SlugScope:
    return SlugScope(
        Article.slug,
        "uq_articles_organization_id_slug",
        SLUG_MAX,
        taken=SlugTaken.suggesting,
        where=(Article.organization_id == organization_id,),
    )


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleView:
    """An article with what its responses show besides its own columns."""

    article: Article
    author: User | None
    tags: list[Tag]


@dataclass(frozen=True)
class ArticleFilters:
    status: ArticleStatus | None = None
    category_slug: str | None = None
    tag_slug: str | None = None
    author_id: uuid.UUID | None = None
    q: str | None = None


async def get_article(
    session: AsyncSession, ctx: OrgContext, article_id: uuid.UUID, *, for_update: bool = False
) -> Article:
    """The org's article, or 404 `article_not_found` (also for another org's id)."""
    statement = select(Article).where(
        Article.id == article_id, Article.organization_id == ctx.org.id
    )
    if for_update:
        statement = statement.with_for_update()
    article = await session.scalar(statement)
    if article is None:
        raise ArticleNotFound()
    return article


async def get_article_by_slug(session: AsyncSession, ctx: OrgContext, slug: str) -> Article:
    """The org's article with this slug, whatever its status."""
    article = await session.scalar(
        select(Article).where(Article.organization_id == ctx.org.id, Article.slug == slug)
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
    """One article with its author and tags."""
    return (await views(session, [article]))[0]


async def list_articles(
    session: AsyncSession, ctx: OrgContext, filters: ArticleFilters, params: PageParams
) -> tuple[list[ArticleView], int]:
    """The org's articles of every status, most recently changed first, filtered."""
    organization_id = ctx.org.id
    statement = select(Article).where(Article.organization_id == organization_id)
    if filters.status is not None:
        statement = statement.where(Article.status == filters.status)
    if filters.author_id is not None:
        statement = statement.where(Article.author_id == filters.author_id)
    if filters.category_slug is not None:
        statement = statement.where(
            Article.category_id.in_(
                select(Category.id).where(
                    Category.organization_id == organization_id,
                    Category.slug == filters.category_slug,
                )
            )
        )
    if filters.tag_slug is not None:
        statement = statement.where(
            Article.id.in_(
                select(ArticleTag.article_id)
                .join(Tag, Tag.id == ArticleTag.tag_id)
                .where(Tag.organization_id == organization_id, Tag.slug == filters.tag_slug)
            )
        )
    if filters.q:
        statement = statement.where(
            func.lower(Article.title).contains(filters.q.lower(), autoescape=True)
        )
    articles, total = await paginate(
        session, statement.order_by(Article.updated_at.desc(), Article.id.desc()), params
    )
    return await views(session, articles), total


# --- writing -------------------------------------------------------------------------------


async def _check_featured_media(
    session: AsyncSession, ctx: OrgContext, media_id: uuid.UUID
) -> None:
    if not await media_service.ensure_featurable(session, ctx.org.id, media_id):
        raise field_error(
            "featured_media_id", "No such media item in this organization.", "media_not_found"
        )


async def create_article(
    session: AsyncSession,
    ctx: OrgContext,
    *,
    title: str,
    slug: str | None,
    excerpt: str,
    body: str,
    category_id: uuid.UUID | None,
    featured_media_id: uuid.UUID | None,
    settings: Settings,
) -> Article:
    """A new draft by the caller, with its first revision; the body is sanitized."""
    if category_id is not None:
        await taxonomy.check_category_ref(session, ctx, category_id, field="category_id")
    if featured_media_id is not None:
        await _check_featured_media(session, ctx, featured_media_id)
    clean_body = sanitize_html(body)
    now = clock.now()
    article = await _article_slugs(ctx.org.id).insert(
        session,
        lambda s: Article(
            organization_id=ctx.org.id,
            title=title,
            slug=s,
            excerpt=excerpt,
            body=clean_body,
            status=ArticleStatus.draft,
            author_id=ctx.user.id,
            category_id=category_id,
            featured_media_id=featured_media_id,
            version=1,
            created_at=now,
            updated_at=now,
        ),
        explicit=slug,
        source_text=title,
    )
    await publishing.write_revision(
        session, article, RevisionReason.created, editor_id=ctx.user.id, settings=settings
    )
    return article


async def update_article(
    session: AsyncSession,
    ctx: OrgContext,
    article_id: uuid.UUID,
    *,
    expected_version: int,
    changes: dict[str, Any],
    settings: Settings,
) -> Article:
    """Apply `changes` if the client saw the current version; a content change writes a
    revision. The row lock makes a concurrent stale save wait and then fail."""
    article = await get_article(session, ctx, article_id, for_update=True)
    publishing.check_version(article, expected_version)
    if "body" in changes:
        changes["body"] = sanitize_html(changes["body"])
    content_changed = False
    for field in ("title", "excerpt", "body"):
        if field in changes and changes[field] != getattr(article, field):
            setattr(article, field, changes[field])
            content_changed = True
    changed = content_changed
    if "category_id" in changes and changes["category_id"] != article.category_id:
        if changes["category_id"] is not None:
            await taxonomy.check_category_ref(
                session, ctx, changes["category_id"], field="category_id"
            )
        article.category_id = changes["category_id"]
        changed = True
    if "featured_media_id" in changes and changes["featured_media_id"] != article.featured_media_id:
        if changes["featured_media_id"] is not None:
            await _check_featured_media(session, ctx, changes["featured_media_id"])
        article.featured_media_id = changes["featured_media_id"]
        changed = True
    if "slug" in changes and changes["slug"] != article.slug:
        previous = article.slug
        await _article_slugs(ctx.org.id).change(session, article, changes["slug"])
        await old_slugs.remember(session, article, previous)
        changed = True
    if not changed:
        return article
    publishing.touch(article)
    await session.flush()
    if content_changed:
        await publishing.write_revision(
            session, article, RevisionReason.edited, editor_id=ctx.user.id, settings=settings
        )
    return article


async def delete_article(session: AsyncSession, ctx: OrgContext, article_id: uuid.UUID) -> None:
    """Delete an article with its revisions and tags, leaving an audit entry."""
    article = await get_article(session, ctx, article_id, for_update=True)
    await audit.record(
        session,
        ctx,
        "article.deleted",
        target=("article", article.id),
        data={"slug": article.slug, "title": article.title, "status": article.status.value},
    )
    await session.execute(delete(Article).where(Article.id == article.id))
    session.expunge(article)


async def replace_tags(
    session: AsyncSession,
    ctx: OrgContext,
    article_id: uuid.UUID,
    tag_ids: Sequence[uuid.UUID],
    *,
    expected_version: int,
) -> Article:
    """Make `tag_ids` the article's whole tag set, in one transaction, if the client saw
    the current version. An id that is not a tag of this organization is a 422
    `tag_not_found` and nothing changes; the same set again changes nothing."""
    article = await get_article(session, ctx, article_id, for_update=True)
    publishing.check_version(article, expected_version)
    wanted = list(dict.fromkeys(tag_ids))
    if wanted:
        found = set(
            await session.scalars(
                select(Tag.id).where(Tag.organization_id == ctx.org.id, Tag.id.in_(wanted))
            )
        )
        missing = [str(t) for t in wanted if t not in found]
        if missing:
            error = field_error("tag_ids", "No such tag in this organization.", "tag_not_found")
            error.extra["missing"] = missing
            raise error
    current = set(
        await session.scalars(select(ArticleTag.tag_id).where(ArticleTag.article_id == article.id))
    )
    if current == set(wanted):
        return article
    await session.execute(delete(ArticleTag).where(ArticleTag.article_id == article.id))
    if wanted:
        published_at = article.published_at if article.status == ArticleStatus.published else None
        await session.execute(
            insert(ArticleTag),
            [
                {
                    "article_id": article.id,
                    "tag_id": tag_id,
                    "organization_id": ctx.org.id,
                    "published_at": published_at,
                }
                for tag_id in wanted
            ],
        )
    publishing.touch(article)
    await session.flush()
    return article
