"""Scheduled publishing: on time, after downtime, exactly once with several workers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import ModuleType

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, make_settings, postgres_only
from tests.factories import create_article, create_organization, create_tag
from townsquare.cms.duties import PUBLISH_SCHEDULED_EVERY_SECONDS, publish_scheduled
from townsquare.cms.enums import ArticleStatus, RevisionReason
from townsquare.cms.models import Article, ArticleRevision, ArticleTag
from townsquare.config import Settings
from townsquare.db import Database, SessionSource
from townsquare.orgs.models import AuditLogEntry, Organization
from townsquare.worker.registry import DutyContext, load_duties


def _ctx(db: SessionSource, settings: Settings, worker: str = "w1") -> DutyContext:
    return DutyContext(db=db, settings=settings, worker_id=worker)


class TestRegistration:
    def test_runs_often_enough_to_publish_within_a_minute(self) -> None:
        [found] = [d for d in load_duties() if d.name == "cms.publish_scheduled"]
        assert found.fn is publish_scheduled
        assert PUBLISH_SCHEDULED_EVERY_SECONDS <= 30


class TestPublishScheduled:
    async def test_publishes_what_is_due_with_revision_and_audit(
        self,
        db: RolledBackDatabase,
        session: AsyncSession,
        client: httpx.AsyncClient,
        org: Organization,
        settings: Settings,
        clock: ModuleType,
    ) -> None:
        now = clock.now()
        tag = await create_tag(session, org, slug="t")
        due = await create_article(
            session, org, slug="due", status=ArticleStatus.scheduled,
            scheduled_publish_at=now - timedelta(seconds=5), tags=[tag],
        )  # fmt: skip
        later = await create_article(
            session, org, slug="later", status=ArticleStatus.scheduled,
            scheduled_publish_at=now + timedelta(minutes=10),
        )  # fmt: skip
        assert await publish_scheduled(_ctx(db, settings)) == 1
        await session.refresh(due)
        await session.refresh(later)
        assert due.status == ArticleStatus.published
        assert due.published_at == now - timedelta(seconds=5)
        assert (due.scheduled_publish_at, due.version) == (None, 2)
        assert later.status == ArticleStatus.scheduled
        revision = await session.scalar(
            select(ArticleRevision).where(ArticleRevision.article_id == due.id)
        )
        assert revision is not None
        assert (revision.reason, revision.editor_id) == (RevisionReason.published, None)
        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.target_id == str(due.id))
        )
        assert entry is not None
        assert (entry.action, entry.actor_id) == ("article.published", None)
        assert entry.data["scheduled"] is True
        public = await client.get(f"/api/v1/public/orgs/{org.slug}/articles", params={"tag": "t"})
        assert [i["slug"] for i in public.json()["items"]] == ["due"]
        assert await publish_scheduled(_ctx(db, settings)) == 0

    async def test_catches_up_after_downtime(
        self,
        db: RolledBackDatabase,
        session: AsyncSession,
        org: Organization,
        clock: ModuleType,
    ) -> None:
        settings = make_settings(WORKER_BATCH_SIZE=2)
        start = clock.now()
        due_times = [start + timedelta(minutes=n) for n in range(1, 6)]
        articles = [
            await create_article(
                session, org, status=ArticleStatus.scheduled, scheduled_publish_at=when
            )
            for when in due_times
        ]
        assert await publish_scheduled(_ctx(db, settings)) == 0
        clock.travel(timedelta(hours=3))
        assert await publish_scheduled(_ctx(db, settings)) == 5
        for article, when in zip(articles, due_times, strict=True):
            await session.refresh(article)
            assert (article.status, article.published_at) == (ArticleStatus.published, when)

    async def test_unpublished_before_its_time_stays_unpublished(
        self,
        db: RolledBackDatabase,
        session: AsyncSession,
        org: Organization,
        settings: Settings,
        clock: ModuleType,
    ) -> None:
        article = await create_article(
            session, org, status=ArticleStatus.draft,
            scheduled_publish_at=clock.now() - timedelta(minutes=1),
        )  # fmt: skip
        assert await publish_scheduled(_ctx(db, settings)) == 0
        await session.refresh(article)
        assert article.status == ArticleStatus.draft


@postgres_only
class TestTwoWorkers:
    async def test_each_article_is_published_exactly_once(
        self, committed_db: Database, settings: Settings, clock: ModuleType
    ) -> None:
        async with committed_db.session() as session:
            org = await create_organization(session)
            tag = await create_tag(session, org)
            for n in range(40):
                await create_article(
                    session, org, status=ArticleStatus.scheduled, tags=[tag],
                    scheduled_publish_at=clock.now() + timedelta(seconds=n),
                )  # fmt: skip
            await session.commit()
        clock.travel(timedelta(minutes=5))
        small = make_settings(WORKER_BATCH_SIZE=3)
        counts = await asyncio.gather(
            *(publish_scheduled(_ctx(committed_db, small, f"w{n}")) for n in range(4))
        )
        assert sum(counts) == 40
        assert await publish_scheduled(_ctx(committed_db, small)) == 0
        async with committed_db.session() as session:
            statuses = list(
                await session.scalars(
                    select(Article.status).where(Article.organization_id == org.id)
                )
            )
            revisions = await session.scalar(
                select(func.count())
                .select_from(ArticleRevision)
                .where(ArticleRevision.organization_id == org.id)
            )
            audits = await session.scalar(
                select(func.count())
                .select_from(AuditLogEntry)
                .where(
                    AuditLogEntry.organization_id == org.id,
                    AuditLogEntry.action == "article.published",
                )
            )
            mirrored = await session.scalar(
                select(func.count())
                .select_from(ArticleTag)
                .where(ArticleTag.organization_id == org.id, ArticleTag.published_at.is_not(None))
            )
        assert statuses == [ArticleStatus.published] * 40
        assert (revisions, audits, mirrored) == (40, 40, 40)
