"""An article's life after its first save: status changes, scheduling, the sweep that
publishes scheduled articles, and revisions (writing, listing, restoring).

`service` (articles) writes revisions through this module, so this one finds articles
with its own lookup instead of importing `service` back. Rows about to change are read
with a row lock (PostgreSQL; SQLite write transactions already hold the database lock).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth import service as auth_service
from townsquare.cms.enums import ArticleStatus, RevisionReason
from townsquare.cms.errors import (
    ArticleNotFound,
    EditConflict,
    InvalidStatusTransition,
    PublishAtInPast,
    RevisionNotFound,
)
from townsquare.cms.models import Article, ArticleRevision, ArticleTag
from townsquare.config import Settings
from townsquare.kit import clock
from townsquare.kit.pagination import PageParams, paginate
from townsquare.orgs import audit
from townsquare.orgs.context import OrgContext

# --- revisions -----------------------------------------------------------------------------


async def write_revision(
    session: AsyncSession,
    article: Article,
    reason: RevisionReason,
    *,
    editor_id: uuid.UUID | None,
    settings: Settings,
) -> ArticleRevision:
    """Snapshot the article's content and drop revisions beyond the newest
    `ARTICLE_REVISIONS_KEPT`. The caller holds the article's row lock, so numbers never
    collide."""
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
    oldest_kept = revision.number - max(1, settings.ARTICLE_REVISIONS_KEPT) + 1
    if oldest_kept > 1:
        await session.execute(
            delete(ArticleRevision).where(
                ArticleRevision.article_id == article.id, ArticleRevision.number < oldest_kept
            )
        )
    return revision


async def list_revisions(
    session: AsyncSession, ctx: OrgContext, article_id: uuid.UUID, paging: PageParams
) -> tuple[list[ArticleRevision], int]:
    """One page of the article's kept revisions, newest first, and how many are kept."""
    await _article(session, ctx, article_id, for_update=False)
    return await paginate(
        session,
        select(ArticleRevision)
        .where(ArticleRevision.article_id == article_id)
        .order_by(ArticleRevision.number.desc()),
        paging,
    )


async def restore_revision(
    session: AsyncSession,
    ctx: OrgContext,
    article_id: uuid.UUID,
    number: int,
    *,
    expected_version: int,
    settings: Settings,
) -> Article:
    """Bring back a revision's title, excerpt and body as a new revision and version
    (nothing changes when they are the article's already)."""
    article = await _article(session, ctx, article_id)
    check_version(article, expected_version)
    revision = await session.scalar(
        select(ArticleRevision).where(
            ArticleRevision.article_id == article.id, ArticleRevision.number == number
        )
    )
    if revision is None:
        raise RevisionNotFound()
    content = (revision.title, revision.excerpt, revision.body)
    if content == (article.title, article.excerpt, article.body):
        return article
    article.title = revision.title
    article.excerpt = revision.excerpt
    article.body = revision.body
    touch(article)
    await session.flush()
    await write_revision(
        session, article, RevisionReason.restored, editor_id=ctx.user.id, settings=settings
    )
    return article


# --- versions and status changes -----------------------------------------------------------


def check_version(article: Article, expected: int) -> None:
    """409 `edit_conflict` unless the client saw the article's current version."""
    if article.version != expected:
        raise EditConflict(extra={"current_version": article.version})


def touch(article: Article) -> None:
    """Count a change of what an editor sees: the version grows by one. Every caller but
    the scheduled publication (the deferred half of a checked `schedule`) has checked the
    client's version first, under the row lock."""
    article.version += 1
    article.updated_at = clock.now()


async def publish_article(
    session: AsyncSession,
    ctx: OrgContext,
    article_id: uuid.UUID,
    *,
    expected_version: int,
    settings: Settings,
) -> Article:
    """Publish now: status, revision and audit entry in the caller's one transaction."""
    auth_service.require_verified_email(ctx.user)
    article = await _article(session, ctx, article_id)
    check_version(article, expected_version)
    _transition(
        article,
        {ArticleStatus.draft, ArticleStatus.scheduled, ArticleStatus.archived},
        "published",
    )
    await _set_published(
        session, ctx, article, published_at=clock.now(), settings=settings, scheduled=False
    )
    return article


async def unpublish_article(
    session: AsyncSession, ctx: OrgContext, article_id: uuid.UUID, *, expected_version: int
) -> Article:
    """Back to draft from published, scheduled or archived; the public no longer sees it."""
    article = await _article(session, ctx, article_id)
    check_version(article, expected_version)
    _transition(
        article,
        {ArticleStatus.published, ArticleStatus.scheduled, ArticleStatus.archived},
        "unpublished",
    )
    previous = article.status
    article.status = ArticleStatus.draft
    article.published_at = None
    article.scheduled_publish_at = None
    await _save_status_change(
        session, ctx, article, "article.unpublished", {"from": previous.value}
    )
    return article


async def schedule_article(
    session: AsyncSession,
    ctx: OrgContext,
    article_id: uuid.UUID,
    *,
    publish_at: datetime,
    expected_version: int,
) -> Article:
    """Publish at `publish_at` (in the future) through the `cms.publish_scheduled` duty."""
    auth_service.require_verified_email(ctx.user)
    if publish_at <= clock.now():
        raise PublishAtInPast()
    article = await _article(session, ctx, article_id)
    check_version(article, expected_version)
    _transition(
        article,
        {ArticleStatus.draft, ArticleStatus.scheduled, ArticleStatus.archived},
        "scheduled",
    )
    article.status = ArticleStatus.scheduled
    article.scheduled_publish_at = publish_at
    article.published_at = None
    await _save_status_change(
        session, ctx, article, "article.scheduled", {"publish_at": publish_at.isoformat()}
    )
    return article


async def archive_article(
    session: AsyncSession, ctx: OrgContext, article_id: uuid.UUID, *, expected_version: int
) -> Article:
    """Take an article off the public site and out of the working set; `/unpublish`
    brings it back as a draft, `/publish` republishes it."""
    article = await _article(session, ctx, article_id)
    check_version(article, expected_version)
    _transition(
        article,
        {ArticleStatus.draft, ArticleStatus.scheduled, ArticleStatus.published},
        "archived",
    )
    previous = article.status
    article.status = ArticleStatus.archived
    article.scheduled_publish_at = None
    await _save_status_change(session, ctx, article, "article.archived", {"from": previous.value})
    return article


async def publish_due_articles(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Publish up to `WORKER_BATCH_SIZE` scheduled articles whose time has come, each with
    a revision and an unattended audit entry. Rows are claimed with SKIP LOCKED and the
    status is checked again under the lock, so concurrent workers never publish one
    article twice."""
    due = (
        await session.scalars(
            select(Article)
            .where(
                Article.status == ArticleStatus.scheduled,
                Article.scheduled_publish_at <= now,
            )
            .order_by(Article.scheduled_publish_at, Article.id)
            .limit(settings.WORKER_BATCH_SIZE)
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
            None,
            article,
            published_at=article.scheduled_publish_at,
            settings=settings,
            scheduled=True,
        )
        published += 1
    return published


async def _article(
    session: AsyncSession, ctx: OrgContext, article_id: uuid.UUID, *, for_update: bool = True
) -> Article:
    statement = select(Article).where(
        Article.id == article_id, Article.organization_id == ctx.org.id
    )
    if for_update:
        statement = statement.with_for_update()
    article = await session.scalar(statement)
    if article is None:
        raise ArticleNotFound()
    return article


def _transition(article: Article, allowed_from: set[ArticleStatus], target: str) -> None:
    if article.status not in allowed_from:
        raise InvalidStatusTransition(
            f"The article is {article.status.value}; it cannot be {target}.",
            extra={"article_status": article.status.value},
        )


async def _set_published(
    session: AsyncSession,
    ctx: OrgContext | None,
    article: Article,
    *,
    published_at: datetime,
    settings: Settings,
    scheduled: bool,
) -> None:
    article.status = ArticleStatus.published
    article.published_at = published_at
    article.scheduled_publish_at = None
    await _save_status_change(session, ctx, article, "article.published", {"scheduled": scheduled})
    await write_revision(
        session,
        article,
        RevisionReason.published,
        editor_id=ctx.user.id if ctx is not None else None,
        settings=settings,
    )


async def _save_status_change(
    session: AsyncSession,
    ctx: OrgContext | None,
    article: Article,
    action: str,
    data: dict[str, Any],
) -> None:
    """Version bump, public mirror and audit entry (unattended when `ctx` is None)."""
    touch(article)
    await session.flush()
    await _mirror_publication(session, article)
    target = ("article", article.id)
    data = {"slug": article.slug, **data}
    if ctx is None:
        await audit.record_unattended(
            session, article.organization_id, action, target=target, data=data
        )
    else:
        await audit.record(session, ctx, action, target=target, data=data)


async def _mirror_publication(session: AsyncSession, article: Article) -> None:
    """Keep `article_tags.published_at` equal to the article's while it is published."""
    published_at = article.published_at if article.status == ArticleStatus.published else None
    await session.execute(
        update(ArticleTag)
        .where(ArticleTag.article_id == article.id)
        .values(published_at=published_at)
    )
