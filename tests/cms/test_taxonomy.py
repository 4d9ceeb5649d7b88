"""CMS categories and tags: slugs, nesting without cycles, deletion, tenancy."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.cms.conftest import context_for
from tests.conftest import postgres_only
from tests.factories import (
    create_article,
    create_category,
    create_organization,
    create_tag,
    create_user,
)
from townsquare.cms import taxonomy
from townsquare.cms.errors import (
    CategoryCycle,
    CategoryInUse,
    CategoryNotFound,
    SlugTaken,
    TagNotFound,
)
from townsquare.cms.models import Category
from townsquare.db import Database, transaction
from townsquare.errors import UnprocessableEntity
from townsquare.kit.pagination import PageParams
from townsquare.orgs.context import OrgContext


class TestCategories:
    async def test_slug_from_name_counts_up(self, session: AsyncSession, ctx: OrgContext) -> None:
        first = await taxonomy.create_category(session, ctx, name="Local News")
        second = await taxonomy.create_category(session, ctx, name="Local News")
        assert (first.slug, second.slug) == ("local-news", "local-news-2")

    async def test_explicit_taken_slug_suggests_a_free_one(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        await taxonomy.create_category(session, ctx, name="News", slug="news")
        with pytest.raises(SlugTaken) as caught:
            await taxonomy.create_category(session, ctx, name="More news", slug="news")
        assert caught.value.extra == {"suggestion": "news-2"}

    async def test_parent_cannot_be_itself_or_a_descendant(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        top = await create_category(session, ctx.org)
        middle = await create_category(session, ctx.org, parent=top)
        leaf = await create_category(session, ctx.org, parent=middle)
        with pytest.raises(CategoryCycle):
            await taxonomy.update_category(session, ctx, top.id, {"parent_id": top.id})
        with pytest.raises(CategoryCycle):
            await taxonomy.update_category(session, ctx, top.id, {"parent_id": leaf.id})
        await session.refresh(top)
        assert top.parent_id is None
        moved = await taxonomy.update_category(session, ctx, leaf.id, {"parent_id": top.id})
        assert moved.parent_id == top.id

    async def test_parent_of_another_org_is_refused(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        foreign = await create_category(session, await create_organization(session))
        with pytest.raises(UnprocessableEntity):
            await taxonomy.create_category(session, ctx, name="X", parent_id=foreign.id)

    async def test_delete_in_use_is_refused(self, session: AsyncSession, ctx: OrgContext) -> None:
        used = await create_category(session, ctx.org)
        await create_article(session, ctx.org, category=used)
        parent = await create_category(session, ctx.org)
        await create_category(session, ctx.org, parent=parent)
        with pytest.raises(CategoryInUse) as caught:
            await taxonomy.delete_category(session, ctx, used.id)
        assert caught.value.extra == {"articles": 1, "subcategories": 0}
        with pytest.raises(CategoryInUse):
            await taxonomy.delete_category(session, ctx, parent.id)
        empty = await create_category(session, ctx.org)
        await taxonomy.delete_category(session, ctx, empty.id)
        with pytest.raises(CategoryNotFound):
            await taxonomy.get_category(session, ctx, empty.id)

    async def test_list_is_by_name_and_of_the_org_only(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        for name in ("Beta", "Alpha", "Gamma"):
            await create_category(session, ctx.org, name=name)
        await create_category(session, await create_organization(session), name="Aardvark")
        rows, total = await taxonomy.list_categories(session, ctx, PageParams(page=1, per_page=2))
        assert ([c.name for c in rows], total) == (["Alpha", "Beta"], 3)


class TestTags:
    async def test_explicit_slug_change_to_a_taken_one(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        await taxonomy.create_tag(session, ctx, name="Events")
        other = await taxonomy.create_tag(session, ctx, name="Other")
        with pytest.raises(SlugTaken) as caught:
            await taxonomy.update_tag(session, ctx, other.id, {"slug": "events"})
        assert caught.value.extra == {"suggestion": "events-2"}
        assert other.slug == "other"

    async def test_tag_of_another_org_is_not_found(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        theirs = await create_tag(session, await create_organization(session))
        with pytest.raises(TagNotFound):
            await taxonomy.delete_tag(session, ctx, theirs.id)

    async def test_list_is_by_name_and_counts_them_all(
        self, session: AsyncSession, ctx: OrgContext
    ) -> None:
        for name in ("b", "a", "c"):
            await create_tag(session, ctx.org, name=name)
        rows, total = await taxonomy.list_tags(session, ctx, PageParams(page=2, per_page=2))
        assert ([t.name for t in rows], total) == (["c"], 3)


@postgres_only
class TestConcurrentReparenting:
    async def test_two_moves_cannot_close_a_loop(self, committed_db: Database) -> None:
        async with committed_db.session() as session:
            org = await create_organization(session)
            ctx = await context_for(session, org, await create_user(session))
            a = await create_category(session, org, slug="a")
            b = await create_category(session, org, slug="b")
            await session.commit()

        async def move(child: uuid.UUID, parent: uuid.UUID) -> str:
            try:
                async with transaction(committed_db) as session:
                    await taxonomy.update_category(session, ctx, child, {"parent_id": parent})
                    await asyncio.sleep(0.05)
            except CategoryCycle:
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
