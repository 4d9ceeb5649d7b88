"""CMS publishing services: status changes, scheduling, the due sweep, revisions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.cms.test_service import create, revisions_of
from tests.conftest import make_settings
from tests.factories import create_article, create_organization, create_tag
from townsquare.cms import publishing, service
from townsquare.cms.enums import ArticleStatus, RevisionReason
from townsquare.cms.errors import (
    ArticleNotFound,
    InvalidStatusTransition,
    PublishAtInPast,
    RevisionNotFound,
)
from townsquare.cms.models import ArticleTag
from townsquare.config import Settings
from townsquare.kit import clock
from townsquare.kit.pagination import PageParams
from townsquare.orgs.context import OrgContext
from townsquare.orgs.models import AuditLogEntry


class TestStatusChanges:
    async def test_publish_writes_revision_audit_and_mirrors_tags(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        tag = await create_tag(session, ctx.org)
        article = await create(session, ctx, settings)
        await service.replace_tags(
            session, ctx, article.id, [tag.id], expected_version=article.version
        )
        await publishing.publish_article(
            session, ctx, article.id, expected_version=article.version, settings=settings
        )
        assert article.status == ArticleStatus.published
        assert article.published_at is not None
        [*_, revision] = await revisions_of(session, article)
        assert (revision.reason, revision.editor_id) == (RevisionReason.published, ctx.user.id)
        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.target_id == str(article.id))
        )
        assert entry is not None
        assert (entry.action, entry.actor_id) == ("article.published", ctx.user.id)
        assert (entry.target_type, entry.data) == (
            "article",
            {"slug": article.slug, "scheduled": False},
        )
        mirrored = await session.scalar(
            select(ArticleTag.published_at).where(ArticleTag.article_id == article.id)
        )
        assert mirrored == article.published_at

    async def test_unpublish_clears_and_audits(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        tag = await create_tag(session, ctx.org)
        article = await create_article(session, ctx.org, status=ArticleStatus.published, tags=[tag])
        await publishing.unpublish_article(
            session, ctx, article.id, expected_version=article.version
        )
        assert (article.status, article.published_at) == (ArticleStatus.draft, None)
        mirrored = await session.scalar(
            select(ArticleTag.published_at).where(ArticleTag.article_id == article.id)
        )
        assert mirrored is None
        actions = await session.scalars(
            select(AuditLogEntry.action).where(AuditLogEntry.target_id == str(article.id))
        )
        assert list(actions) == ["article.unpublished"]

    async def test_publishing_a_published_article_is_a_conflict(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        article = await create_article(session, ctx.org, status=ArticleStatus.published)
        with pytest.raises(InvalidStatusTransition) as caught:
            await publishing.publish_article(
                session, ctx, article.id, expected_version=article.version, settings=settings
            )
        assert caught.value.extra == {"article_status": "published"}

    async def test_schedule_needs_a_future_time(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        article = await create(session, ctx, settings)
        with pytest.raises(PublishAtInPast):
            await publishing.schedule_article(
                session, ctx, article.id, expected_version=article.version, publish_at=clock.now()
            )
        later = clock.now() + timedelta(hours=1)
        await publishing.schedule_article(
            session, ctx, article.id, expected_version=article.version, publish_at=later
        )
        assert (article.status, article.scheduled_publish_at) == (ArticleStatus.scheduled, later)

    async def test_archive_then_unpublish_returns_to_draft(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        article = await create_article(session, ctx.org, status=ArticleStatus.published)
        await publishing.archive_article(session, ctx, article.id, expected_version=article.version)
        archived = article.status
        await publishing.unpublish_article(
            session, ctx, article.id, expected_version=article.version
        )
        assert (archived, article.status) == (ArticleStatus.archived, ArticleStatus.draft)

    async def test_article_of_another_org_is_not_found(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        theirs = await create_article(session, await create_organization(session))
        with pytest.raises(ArticleNotFound):
            await publishing.publish_article(
                session, ctx, theirs.id, expected_version=theirs.version, settings=settings
            )
        with pytest.raises(ArticleNotFound):
            await publishing.list_revisions(
                session, ctx, theirs.id, PageParams(page=1, per_page=20)
            )
        assert theirs.status == ArticleStatus.draft


class TestPublishDue:
    async def test_publishes_at_the_scheduled_time_without_an_actor(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        when = clock.now() - timedelta(minutes=1)
        due = await create_article(
            session, ctx.org, status=ArticleStatus.scheduled, scheduled_publish_at=when
        )
        published = await publishing.publish_due_articles(
            session, now=clock.now(), settings=settings
        )
        assert published == 1
        assert (due.status, due.published_at, due.scheduled_publish_at) == (
            ArticleStatus.published,
            when,
            None,
        )
        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.target_id == str(due.id))
        )
        assert entry is not None
        assert (entry.actor_id, entry.organization_id) == (None, ctx.org.id)
        assert entry.data == {"slug": due.slug, "scheduled": True}

    async def test_takes_one_batch_at_a_time(self, session: AsyncSession, ctx: OrgContext) -> None:
        for n in range(3):
            await create_article(
                session, ctx.org, status=ArticleStatus.scheduled,
                scheduled_publish_at=clock.now() - timedelta(minutes=n + 1),
            )  # fmt: skip
        small = make_settings(WORKER_BATCH_SIZE=2)
        counts = [
            await publishing.publish_due_articles(session, now=clock.now(), settings=small)
            for _ in range(3)
        ]
        assert counts == [2, 1, 0]


class TestRevisions:
    async def test_only_newest_revisions_are_kept(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        keep_three = make_settings(ARTICLE_REVISIONS_KEPT=3)
        article = await create(session, ctx, keep_three)
        for n in range(1, 6):
            await service.update_article(
                session, ctx, article.id,
                expected_version=n, changes={"title": f"Title {n}"}, settings=keep_three,
            )  # fmt: skip
        revisions = await revisions_of(session, article)
        assert [r.number for r in revisions] == [4, 5, 6]
        assert revisions[-1].title == "Title 5"

    async def test_list_is_newest_first(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        article = await create(session, ctx, settings, "One")
        await service.update_article(
            session, ctx, article.id,
            expected_version=1, changes={"title": "Two"}, settings=settings,
        )  # fmt: skip
        listed, total = await publishing.list_revisions(
            session, ctx, article.id, PageParams(page=1, per_page=20)
        )
        assert [(r.number, r.title) for r in listed] == [(2, "Two"), (1, "One")]
        assert total == 2

    async def test_restore_makes_a_new_revision_and_version(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        article = await create(session, ctx, settings, "Original", body="<p>One</p>")
        await service.update_article(
            session, ctx, article.id,
            expected_version=1, changes={"title": "Changed", "body": "<p>Two</p>"},
            settings=settings,
        )  # fmt: skip
        await publishing.restore_revision(
            session, ctx, article.id, 1, expected_version=article.version, settings=settings
        )
        assert (article.title, article.body, article.version) == ("Original", "<p>One</p>", 3)
        revisions = await revisions_of(session, article)
        assert [(r.number, r.reason) for r in revisions][-1] == (3, RevisionReason.restored)

    async def test_unknown_revision(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        article = await create(session, ctx, settings)
        with pytest.raises(RevisionNotFound):
            await publishing.restore_revision(
                session, ctx, article.id, 99, expected_version=article.version, settings=settings
            )
