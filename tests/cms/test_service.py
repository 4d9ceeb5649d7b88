"""CMS services: slugs, versions, revisions, publishing, categories and tags."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import postgres_only
from tests.factories import (
    create_article,
    create_category,
    create_organization,
    create_tag,
    create_user,
)
from townsquare.auth.models import User
from townsquare.cms import service
from townsquare.cms.enums import ArticleStatus, RevisionReason
from townsquare.cms.models import Article, ArticleRevision, ArticleTag, Category
from townsquare.db import Database, transaction
from townsquare.errors import UnprocessableEntity
from townsquare.kit import clock
from townsquare.orgs.models import AuditLogEntry, Organization

KEEP = 50


async def _create(
    session: AsyncSession,
    org: Organization,
    user: User,
    title: str = "Hello World",
    *,
    slug: str | None = None,
    body: str = "<p>Hi</p>",
) -> Article:
    return await service.create_article(
        session,
        org.id,
        user.id,
        title=title,
        slug=slug,
        excerpt="",
        body=body,
        category_id=None,
        featured_media_id=None,
        revisions_kept=KEEP,
    )


async def _revisions(session: AsyncSession, article: Article) -> list[ArticleRevision]:
    rows = await session.scalars(
        select(ArticleRevision)
        .where(ArticleRevision.article_id == article.id)
        .order_by(ArticleRevision.number)
    )
    return list(rows)


class TestCreateArticle:
    async def test_slug_from_title_and_first_revision(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await _create(session, org, editor, "Hello, Wörld!", body="<p onclick=x>Hi</p>")
        assert article.slug == "hello-world"
        assert article.status == ArticleStatus.draft
        assert article.version == 1
        assert article.body == "<p>Hi</p>"
        [revision] = await _revisions(session, article)
        assert (revision.number, revision.reason) == (1, RevisionReason.created)

    async def test_generated_slug_counts_up(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        slugs = [(await _create(session, org, editor, "Same Title")).slug for _ in range(3)]
        assert slugs == ["same-title", "same-title-2", "same-title-3"]

    async def test_same_slug_in_another_org_is_fine(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        other = await create_organization(session)
        await _create(session, org, editor, "Shared")
        assert (await _create(session, other, editor, "Shared")).slug == "shared"

    async def test_explicit_taken_slug_is_a_conflict_with_suggestion(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        await _create(session, org, editor, "First", slug="taken")
        with pytest.raises(service.SlugTaken) as caught:
            await _create(session, org, editor, "Second", slug="taken")
        assert caught.value.extra == {"suggestion": "taken-2"}
        count = await session.scalar(
            select(func.count()).select_from(Article).where(Article.organization_id == org.id)
        )
        assert count == 1


class TestUpdateArticle:
    async def test_stale_version_changes_nothing(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await _create(session, org, editor)
        await service.update_article(
            session, org.id, editor.id, article.id,
            expected_version=1, changes={"title": "Second"}, revisions_kept=KEEP,
        )  # fmt: skip
        with pytest.raises(service.EditConflict) as caught:
            await service.update_article(
                session, org.id, editor.id, article.id,
                expected_version=1, changes={"title": "Lost update"}, revisions_kept=KEEP,
            )  # fmt: skip
        assert caught.value.extra == {"current_version": 2}
        await session.refresh(article)
        assert (article.title, article.version) == ("Second", 2)

    async def test_content_change_writes_revision_other_changes_do_not(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await _create(session, org, editor)
        category = await create_category(session, org)
        await service.update_article(
            session, org.id, editor.id, article.id,
            expected_version=1, changes={"category_id": category.id}, revisions_kept=KEEP,
        )  # fmt: skip
        assert len(await _revisions(session, article)) == 1
        await service.update_article(
            session, org.id, editor.id, article.id,
            expected_version=2, changes={"body": "<p>New</p><script>x</script>"},
            revisions_kept=KEEP,
        )  # fmt: skip
        revisions = await _revisions(session, article)
        assert [r.reason for r in revisions] == [RevisionReason.created, RevisionReason.edited]
        assert revisions[-1].body == "<p>New</p>"
        assert article.version == 3

    async def test_unchanged_save_keeps_version(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await _create(session, org, editor)
        same = await service.update_article(
            session, org.id, editor.id, article.id,
            expected_version=1, changes={"title": article.title}, revisions_kept=KEEP,
        )  # fmt: skip
        assert same.version == 1

    async def test_only_newest_revisions_are_kept(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await _create(session, org, editor)
        for n in range(1, 6):
            await service.update_article(
                session, org.id, editor.id, article.id,
                expected_version=n, changes={"title": f"Title {n}"}, revisions_kept=3,
            )  # fmt: skip
        revisions = await _revisions(session, article)
        assert [r.number for r in revisions] == [4, 5, 6]
        assert revisions[-1].title == "Title 5"

    async def test_category_of_another_org_is_refused(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await _create(session, org, editor)
        foreign = await create_category(session, await create_organization(session))
        with pytest.raises(UnprocessableEntity):
            await service.update_article(
                session, org.id, editor.id, article.id,
                expected_version=1, changes={"category_id": foreign.id}, revisions_kept=KEEP,
            )  # fmt: skip

    async def test_article_of_another_org_is_not_found(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        other = await create_organization(session)
        article = await create_article(session, other, title="Theirs")
        with pytest.raises(service.ArticleNotFound):
            await service.update_article(
                session, org.id, editor.id, article.id,
                expected_version=1, changes={"title": "Mine"}, revisions_kept=KEEP,
            )  # fmt: skip
        await session.refresh(article)
        assert article.title == "Theirs"


class TestPublishing:
    async def test_publish_writes_revision_audit_and_mirrors_tags(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        tag = await create_tag(session, org)
        article = await _create(session, org, editor)
        await service.replace_tags(session, org.id, article.id, [tag.id])
        await service.publish_article(session, org.id, editor.id, article.id, revisions_kept=KEEP)
        assert article.status == ArticleStatus.published
        assert article.published_at is not None
        assert (await _revisions(session, article))[-1].reason == RevisionReason.published
        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.target_id == str(article.id))
        )
        assert entry is not None
        assert (entry.action, entry.actor_id) == ("article.published", editor.id)
        mirrored = await session.scalar(
            select(ArticleTag.published_at).where(ArticleTag.article_id == article.id)
        )
        assert mirrored == article.published_at

    async def test_unpublish_clears_and_audits(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        tag = await create_tag(session, org)
        article = await create_article(session, org, status=ArticleStatus.published, tags=[tag])
        await service.unpublish_article(session, org.id, editor.id, article.id)
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
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await create_article(session, org, status=ArticleStatus.published)
        with pytest.raises(service.InvalidStatusTransition):
            await service.publish_article(
                session, org.id, editor.id, article.id, revisions_kept=KEEP
            )

    async def test_schedule_needs_a_future_time(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await _create(session, org, editor)
        with pytest.raises(service.PublishAtInPast):
            await service.schedule_article(
                session, org.id, editor.id, article.id, publish_at=clock.now()
            )
        later = clock.now() + timedelta(hours=1)
        await service.schedule_article(session, org.id, editor.id, article.id, publish_at=later)
        assert (article.status, article.scheduled_publish_at) == (ArticleStatus.scheduled, later)

    async def test_archive_then_unpublish_returns_to_draft(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await create_article(session, org, status=ArticleStatus.published)
        await service.archive_article(session, org.id, editor.id, article.id)
        assert article.status == ArticleStatus.archived
        await service.unpublish_article(session, org.id, editor.id, article.id)
        assert article.status == ArticleStatus.draft

    async def test_delete_removes_revisions_and_audits(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await _create(session, org, editor)
        article_id = article.id
        await service.delete_article(session, org.id, editor.id, article_id)
        assert await session.get(Article, article_id) is None
        left = await session.scalar(
            select(func.count())
            .select_from(ArticleRevision)
            .where(ArticleRevision.article_id == article_id)
        )
        assert left == 0
        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.target_id == str(article_id))
        )
        assert entry is not None
        assert entry.action == "article.deleted"


class TestRestoreRevision:
    async def test_restore_makes_a_new_revision_and_version(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await _create(session, org, editor, "Original", body="<p>One</p>")
        await service.update_article(
            session, org.id, editor.id, article.id,
            expected_version=1, changes={"title": "Changed", "body": "<p>Two</p>"},
            revisions_kept=KEEP,
        )  # fmt: skip
        await service.restore_revision(
            session, org.id, editor.id, article.id, 1, revisions_kept=KEEP
        )
        assert (article.title, article.body, article.version) == ("Original", "<p>One</p>", 3)
        revisions = await _revisions(session, article)
        assert [(r.number, r.reason) for r in revisions][-1] == (3, RevisionReason.restored)

    async def test_unknown_revision(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        article = await _create(session, org, editor)
        with pytest.raises(service.RevisionNotFound):
            await service.restore_revision(
                session, org.id, editor.id, article.id, 99, revisions_kept=KEEP
            )


class TestReplaceTags:
    async def test_replaces_the_whole_set(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        a, b, c = [await create_tag(session, org) for _ in range(3)]
        article = await create_article(session, org, tags=[a, b])
        await service.replace_tags(session, org.id, article.id, [c.id, b.id, c.id])
        tag_ids = set(
            await session.scalars(
                select(ArticleTag.tag_id).where(ArticleTag.article_id == article.id)
            )
        )
        assert tag_ids == {b.id, c.id}
        assert article.version == 2

    async def test_foreign_tag_changes_nothing(
        self, session: AsyncSession, org: Organization, editor: User
    ) -> None:
        mine = await create_tag(session, org)
        theirs = await create_tag(session, await create_organization(session))
        article = await create_article(session, org, tags=[mine])
        with pytest.raises(UnprocessableEntity) as caught:
            await service.replace_tags(session, org.id, article.id, [theirs.id])
        assert caught.value.extra["missing"] == [str(theirs.id)]
        tag_ids = list(
            await session.scalars(
                select(ArticleTag.tag_id).where(ArticleTag.article_id == article.id)
            )
        )
        assert tag_ids == [mine.id]


class TestCategories:
    async def test_slug_from_name_counts_up(self, session: AsyncSession, org: Organization) -> None:
        first = await service.create_category(session, org.id, name="Local News")
        second = await service.create_category(session, org.id, name="Local News")
        assert (first.slug, second.slug) == ("local-news", "local-news-2")

    async def test_parent_cannot_be_itself_or_a_descendant(
        self, session: AsyncSession, org: Organization
    ) -> None:
        top = await create_category(session, org)
        middle = await create_category(session, org, parent=top)
        leaf = await create_category(session, org, parent=middle)
        with pytest.raises(service.CategoryCycle):
            await service.update_category(session, org.id, top.id, {"parent_id": top.id})
        with pytest.raises(service.CategoryCycle):
            await service.update_category(session, org.id, top.id, {"parent_id": leaf.id})
        await session.refresh(top)
        assert top.parent_id is None
        moved = await service.update_category(session, org.id, leaf.id, {"parent_id": top.id})
        assert moved.parent_id == top.id

    async def test_parent_of_another_org_is_refused(
        self, session: AsyncSession, org: Organization
    ) -> None:
        foreign = await create_category(session, await create_organization(session))
        with pytest.raises(UnprocessableEntity):
            await service.create_category(session, org.id, name="X", parent_id=foreign.id)

    async def test_delete_in_use_is_refused(self, session: AsyncSession, org: Organization) -> None:
        used = await create_category(session, org)
        await create_article(session, org, category=used)
        parent = await create_category(session, org)
        await create_category(session, org, parent=parent)
        with pytest.raises(service.CategoryInUse) as caught:
            await service.delete_category(session, org.id, used.id)
        assert caught.value.extra == {"articles": 1, "subcategories": 0}
        with pytest.raises(service.CategoryInUse):
            await service.delete_category(session, org.id, parent.id)
        empty = await create_category(session, org)
        await service.delete_category(session, org.id, empty.id)
        with pytest.raises(service.CategoryNotFound):
            await service.get_category(session, org.id, empty.id)


class TestTags:
    async def test_explicit_slug_change_to_a_taken_one(
        self, session: AsyncSession, org: Organization
    ) -> None:
        await service.create_tag(session, org.id, name="Events")
        other = await service.create_tag(session, org.id, name="Other")
        with pytest.raises(service.SlugTaken):
            await service.update_tag(session, org.id, other.id, {"slug": "events"})

    async def test_tag_of_another_org_is_not_found(
        self, session: AsyncSession, org: Organization
    ) -> None:
        theirs = await create_tag(session, await create_organization(session))
        with pytest.raises(service.TagNotFound):
            await service.delete_tag(session, org.id, theirs.id)


class TestListArticles:
    async def test_filters(self, session: AsyncSession, org: Organization, editor: User) -> None:
        other_author = await create_user(session)
        news = await create_category(session, org, slug="news")
        tag = await create_tag(session, org, slug="featured")
        match = await create_article(
            session, org, author=editor, title="Spring Fair", category=news, tags=[tag],
            status=ArticleStatus.published,
        )  # fmt: skip
        await create_article(session, org, author=other_author, title="Spring cleaning")
        await create_article(session, org, author=editor, title="Autumn", category=news)
        await create_article(session, await create_organization(session), title="Spring Fair")
        page = service.PageParams(page=1, per_page=20)
        cases = {
            "q": service.ArticleFilters(q="FAIR"),
            "status": service.ArticleFilters(status=ArticleStatus.published),
            "tag": service.ArticleFilters(tag_slug="featured"),
            "combined": service.ArticleFilters(
                category_slug="news", author_id=editor.id, q="spring"
            ),
        }
        for name, filters in cases.items():
            views, total = await service.list_articles(session, org.id, filters, page)
            assert ([v.article.id for v in views], total) == ([match.id], 1), name
        _, total = await service.list_articles(session, org.id, service.ArticleFilters(), page)
        assert total == 3

    async def test_unknown_id_is_not_found(self, session: AsyncSession, org: Organization) -> None:
        with pytest.raises(service.ArticleNotFound):
            await service.get_article(session, org.id, uuid.uuid4())


@postgres_only
class TestConcurrentReparenting:
    async def test_two_moves_cannot_close_a_loop(self, committed_db: Database) -> None:
        async with committed_db.session() as session:
            org = await create_organization(session)
            a = await create_category(session, org, slug="a")
            b = await create_category(session, org, slug="b")
            await session.commit()

        async def move(child: uuid.UUID, parent: uuid.UUID) -> str:
            try:
                async with transaction(committed_db) as session:
                    await service.update_category(session, org.id, child, {"parent_id": parent})
                    await asyncio.sleep(0.05)
            except service.CategoryCycle:
                return "cycle"
            return "moved"

        outcomes = await asyncio.gather(move(a.id, b.id), move(b.id, a.id))
        assert sorted(outcomes) == ["cycle", "moved"]
        async with committed_db.session() as session:
            rows = await session.execute(
                select(Category.id, Category.parent_id).where(Category.organization_id == org.id)
            )
            parents = {row.id: row.parent_id for row in rows}
        assert None in parents.values()
