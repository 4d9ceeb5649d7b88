"""CMS article services: slugs, versions, tag sets, lists, deletion."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.cms.conftest import context_for
from tests.factories import (
    create_article,
    create_category,
    create_organization,
    create_tag,
    create_user,
)
from townsquare.cms import service
from townsquare.cms.enums import ArticleStatus, RevisionReason
from townsquare.cms.errors import ArticleNotFound, EditConflict, SlugTaken
from townsquare.cms.models import Article, ArticleRevision, ArticleTag
from townsquare.config import Settings
from townsquare.errors import UnprocessableEntity
from townsquare.kit.pagination import PageParams
from townsquare.orgs.context import OrgContext
from townsquare.orgs.models import AuditLogEntry


async def create(
    session: AsyncSession,
    ctx: OrgContext,
    settings: Settings,
    title: str = "Hello World",
    *,
    slug: str | None = None,
    body: str = "<p>Hi</p>",
) -> Article:
    """An article created through the service, as the API creates one."""
    return await service.create_article(
        session,
        ctx,
        title=title,
        slug=slug,
        excerpt="",
        body=body,
        category_id=None,
        featured_media_id=None,
        settings=settings,
    )


async def revisions_of(session: AsyncSession, article: Article) -> list[ArticleRevision]:
    rows = await session.scalars(
        select(ArticleRevision)
        .where(ArticleRevision.article_id == article.id)
        .order_by(ArticleRevision.number)
    )
    return list(rows)


class TestCreateArticle:
    async def test_slug_from_title_and_first_revision(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        article = await create(session, ctx, settings, "Hello, Wörld!", body="<p onclick=x>Hi</p>")
        assert article.slug == "hello-world"
        assert article.status == ArticleStatus.draft
        assert article.version == 1
        assert article.body == "<p>Hi</p>"
        assert article.author_id == ctx.user.id
        [revision] = await revisions_of(session, article)
        assert (revision.number, revision.reason) == (1, RevisionReason.created)

    async def test_generated_slug_counts_up(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        slugs = [(await create(session, ctx, settings, "Same Title")).slug for _ in range(3)]
        assert slugs == ["same-title", "same-title-2", "same-title-3"]

    async def test_same_slug_in_another_org_is_fine(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        other = await context_for(session, await create_organization(session), ctx.user)
        await create(session, ctx, settings, "Shared")
        assert (await create(session, other, settings, "Shared")).slug == "shared"

    async def test_explicit_taken_slug_is_a_conflict_with_suggestion(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        await create(session, ctx, settings, "First", slug="taken")
        with pytest.raises(SlugTaken) as caught:
            await create(session, ctx, settings, "Second", slug="taken")
        assert caught.value.extra == {"suggestion": "taken-2"}
        count = await session.scalar(
            select(func.count()).select_from(Article).where(Article.organization_id == ctx.org.id)
        )
        assert count == 1


class TestUpdateArticle:
    async def test_stale_version_changes_nothing(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        article = await create(session, ctx, settings)
        await service.update_article(
            session, ctx, article.id,
            expected_version=1, changes={"title": "Second"}, settings=settings,
        )  # fmt: skip
        with pytest.raises(EditConflict) as caught:
            await service.update_article(
                session, ctx, article.id,
                expected_version=1, changes={"title": "Lost update"}, settings=settings,
            )  # fmt: skip
        assert caught.value.extra == {"current_version": 2}
        await session.refresh(article)
        assert (article.title, article.version) == ("Second", 2)

    async def test_content_change_writes_revision_other_changes_do_not(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        article = await create(session, ctx, settings)
        category = await create_category(session, ctx.org)
        await service.update_article(
            session, ctx, article.id,
            expected_version=1, changes={"category_id": category.id}, settings=settings,
        )  # fmt: skip
        assert len(await revisions_of(session, article)) == 1
        await service.update_article(
            session, ctx, article.id,
            expected_version=2, changes={"body": "<p>New</p><script>x</script>"},
            settings=settings,
        )  # fmt: skip
        revisions = await revisions_of(session, article)
        assert [r.reason for r in revisions] == [RevisionReason.created, RevisionReason.edited]
        assert revisions[-1].body == "<p>New</p>"
        assert article.version == 3

    async def test_unchanged_save_keeps_version(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        article = await create(session, ctx, settings)
        same = await service.update_article(
            session, ctx, article.id,
            expected_version=1, changes={"title": article.title}, settings=settings,
        )  # fmt: skip
        assert same.version == 1

    async def test_category_of_another_org_is_refused(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        article = await create(session, ctx, settings)
        foreign = await create_category(session, await create_organization(session))
        with pytest.raises(UnprocessableEntity):
            await service.update_article(
                session, ctx, article.id,
                expected_version=1, changes={"category_id": foreign.id}, settings=settings,
            )  # fmt: skip

    async def test_article_of_another_org_is_not_found(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        other = await create_organization(session)
        article = await create_article(session, other, title="Theirs")
        with pytest.raises(ArticleNotFound):
            await service.update_article(
                session, ctx, article.id,
                expected_version=1, changes={"title": "Mine"}, settings=settings,
            )  # fmt: skip
        await session.refresh(article)
        assert article.title == "Theirs"


class TestDeleteArticle:
    async def test_delete_removes_revisions_and_audits(
        self, session: AsyncSession, ctx: OrgContext, settings: Settings
    ) -> None:
        article = await create(session, ctx, settings)
        article_id = article.id
        await service.delete_article(session, ctx, article_id)
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
        assert (entry.actor_id, entry.organization_id) == (ctx.user.id, ctx.org.id)


class TestReplaceTags:
    async def test_replaces_the_whole_set(self, session: AsyncSession, ctx: OrgContext) -> None:
        a, b, c = [await create_tag(session, ctx.org) for _ in range(3)]
        article = await create_article(session, ctx.org, tags=[a, b])
        await service.replace_tags(
            session, ctx, article.id, [c.id, b.id, c.id], expected_version=article.version
        )
        tag_ids = set(
            await session.scalars(
                select(ArticleTag.tag_id).where(ArticleTag.article_id == article.id)
            )
        )
        assert tag_ids == {b.id, c.id}
        assert article.version == 2

    async def test_foreign_tag_changes_nothing(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        mine = await create_tag(session, ctx.org)
        theirs = await create_tag(session, await create_organization(session))
        article = await create_article(session, ctx.org, tags=[mine])
        with pytest.raises(UnprocessableEntity) as caught:
            await service.replace_tags(
                session, ctx, article.id, [theirs.id], expected_version=article.version
            )
        assert caught.value.extra["missing"] == [str(theirs.id)]
        tag_ids = list(
            await session.scalars(
                select(ArticleTag.tag_id).where(ArticleTag.article_id == article.id)
            )
        )
        assert tag_ids == [mine.id]


class TestListArticles:
    async def test_filters(self, session: AsyncSession, ctx: OrgContext) -> None:
        org, editor = ctx.org, ctx.user
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
        page = PageParams(page=1, per_page=20)
        cases = {
            "q": service.ArticleFilters(q="FAIR"),
            "status": service.ArticleFilters(status=ArticleStatus.published),
            "tag": service.ArticleFilters(tag_slug="featured"),
            "combined": service.ArticleFilters(
                category_slug="news", author_id=editor.id, q="spring"
            ),
        }
        for name, filters in cases.items():
            views, total = await service.list_articles(session, ctx, filters, page)
            assert ([v.article.id for v in views], total) == ([match.id], 1), name
        _, total = await service.list_articles(session, ctx, service.ArticleFilters(), page)
        assert total == 3

    async def test_pages_past_the_end_still_count(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        for n in range(3):
            await create_article(session, ctx.org, title=f"Item {n}")
        filters = service.ArticleFilters()
        views, total = await service.list_articles(
            session, ctx, filters, PageParams(page=2, per_page=2)
        )
        assert (len(views), total) == (1, 3)
        views, total = await service.list_articles(
            session, ctx, filters, PageParams(page=5, per_page=2)
        )
        assert (views, total) == ([], 3)

    async def test_unknown_id_is_not_found(self, session: AsyncSession, ctx: OrgContext) -> None:
        with pytest.raises(ArticleNotFound):
            await service.get_article(session, ctx, uuid.uuid4())
