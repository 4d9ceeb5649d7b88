"""Categories and tags of an organization's articles.

Every function takes the caller's `OrgContext` and filters by `ctx.org.id`, so an id of
another organization is simply not found. Functions only flush; the request commits.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.cms.errors import (
    CategoryCycle,
    CategoryInUse,
    CategoryNotFound,
    SlugTaken,
    TagNotFound,
)
from townsquare.cms.models import CATEGORY_SLUG_MAX, TAG_SLUG_MAX, Article, Category, Tag
from townsquare.db_slugs import SlugScope
from townsquare.errors import field_error
from townsquare.kit import clock
from townsquare.kit.pagination import PageParams, paginate
from townsquare.orgs.context import OrgContext
from townsquare.orgs.models import Organization


def _category_slugs(organization_id: uuid.UUID) -> SlugScope:
    return SlugScope(
        Category.slug,
        "uq_categories_organization_id_slug",
        CATEGORY_SLUG_MAX,
        taken=SlugTaken.suggesting,
        where=(Category.organization_id == organization_id,),
    )


def _tag_slugs(organization_id: uuid.UUID) -> SlugScope:
    return SlugScope(
        Tag.slug,
        "uq_tags_organization_id_slug",
        TAG_SLUG_MAX,
        taken=SlugTaken.suggesting,
        where=(Tag.organization_id == organization_id,),
    )


# --- categories ----------------------------------------------------------------------------


async def list_categories(
    session: AsyncSession, ctx: OrgContext, params: PageParams
) -> tuple[list[Category], int]:
    """The org's categories by name, one page, and how many there are."""
    statement = (
        select(Category)
        .where(Category.organization_id == ctx.org.id)
        .order_by(Category.name, Category.id)
    )
    return await paginate(session, statement, params)


async def get_category(
    session: AsyncSession, ctx: OrgContext, category_id: uuid.UUID, *, for_update: bool = False
) -> Category:
    """The org's category, or 404 `category_not_found`."""
    statement = select(Category).where(
        Category.id == category_id, Category.organization_id == ctx.org.id
    )
    if for_update:
        statement = statement.with_for_update()
    category = await session.scalar(statement)
    if category is None:
        raise CategoryNotFound()
    return category


async def check_category_ref(
    session: AsyncSession, ctx: OrgContext, category_id: uuid.UUID, *, field: str
) -> None:
    """A 422 on `field` unless `category_id` is a category of the org."""
    found = await session.scalar(
        select(Category.id).where(
            Category.id == category_id, Category.organization_id == ctx.org.id
        )
    )
    if found is None:
        raise field_error(field, "No such category in this organization.", "category_not_found")


async def create_category(
    session: AsyncSession,
    ctx: OrgContext,
    *,
    name: str,
    slug: str | None = None,
    parent_id: uuid.UUID | None = None,
) -> Category:
    """A new category; its slug is made from the name unless given."""
    if parent_id is not None:
        await check_category_ref(session, ctx, parent_id, field="parent_id")
    organization_id = ctx.org.id
    return await _category_slugs(organization_id).insert(
        session,
        lambda s: Category(organization_id=organization_id, name=name, slug=s, parent_id=parent_id),
        explicit=slug,
        source_text=name,
    )


async def update_category(
    session: AsyncSession, ctx: OrgContext, category_id: uuid.UUID, changes: dict[str, Any]
) -> Category:
    """Rename, re-slug or move a category; a move under itself or a descendant is a 422."""
    if "parent_id" in changes:
        await _lock_category_tree(session, ctx)
    category = await get_category(session, ctx, category_id, for_update=True)
    if "name" in changes:
        category.name = changes["name"]
    if "parent_id" in changes and changes["parent_id"] != category.parent_id:
        parent_id: uuid.UUID | None = changes["parent_id"]
        if parent_id is not None:
            await check_category_ref(session, ctx, parent_id, field="parent_id")
            await _refuse_cycle(session, ctx, category.id, parent_id)
        category.parent_id = parent_id
    if "slug" in changes:
        await _category_slugs(ctx.org.id).change(session, category, changes["slug"])
    category.updated_at = clock.now()
    await session.flush()
    return category


async def _lock_category_tree(session: AsyncSession, ctx: OrgContext) -> None:
    # Two concurrent re-parentings could each pass the cycle check and together close a
    # loop; they serialize on the org row (NO KEY UPDATE does not block inserts that
    # reference the org).
    await session.execute(
        select(Organization.id).where(Organization.id == ctx.org.id).with_for_update(key_share=True)
    )


async def _refuse_cycle(
    session: AsyncSession, ctx: OrgContext, category_id: uuid.UUID, parent_id: uuid.UUID
) -> None:
    seen: set[uuid.UUID] = set()
    current: uuid.UUID | None = parent_id
    while current is not None:
        if current == category_id or current in seen:
            raise CategoryCycle()
        seen.add(current)
        current = await session.scalar(
            select(Category.parent_id).where(
                Category.id == current, Category.organization_id == ctx.org.id
            )
        )


async def delete_category(session: AsyncSession, ctx: OrgContext, category_id: uuid.UUID) -> None:
    """Delete an empty category. One that still has articles or subcategories answers
    409 `category_in_use` (with both counts): nothing published moves silently."""
    category = await get_category(session, ctx, category_id, for_update=True)
    articles = await session.scalar(
        select(func.count()).select_from(Article).where(Article.category_id == category.id)
    )
    children = await session.scalar(
        select(func.count()).select_from(Category).where(Category.parent_id == category.id)
    )
    if articles or children:
        raise CategoryInUse(extra={"articles": articles or 0, "subcategories": children or 0})
    await session.delete(category)
    await session.flush()


# --- tags ----------------------------------------------------------------------------------


async def list_tags(
    session: AsyncSession, ctx: OrgContext, params: PageParams
) -> tuple[list[Tag], int]:
    """The org's tags by name, one page, and how many there are."""
    statement = select(Tag).where(Tag.organization_id == ctx.org.id).order_by(Tag.name, Tag.id)
    return await paginate(session, statement, params)


async def get_tag(
    session: AsyncSession, ctx: OrgContext, tag_id: uuid.UUID, *, for_update: bool = False
) -> Tag:
    """The org's tag, or 404 `tag_not_found`."""
    statement = select(Tag).where(Tag.id == tag_id, Tag.organization_id == ctx.org.id)
    if for_update:
        statement = statement.with_for_update()
    tag = await session.scalar(statement)
    if tag is None:
        raise TagNotFound()
    return tag


async def create_tag(
    session: AsyncSession, ctx: OrgContext, *, name: str, slug: str | None = None
) -> Tag:
    """A new tag; its slug is made from the name unless given."""
    organization_id = ctx.org.id
    return await _tag_slugs(organization_id).insert(
        session,
        lambda s: Tag(organization_id=organization_id, name=name, slug=s),
        explicit=slug,
        source_text=name,
    )


async def update_tag(
    session: AsyncSession, ctx: OrgContext, tag_id: uuid.UUID, changes: dict[str, Any]
) -> Tag:
    """Rename or re-slug a tag."""
    tag = await get_tag(session, ctx, tag_id, for_update=True)
    if "name" in changes:
        tag.name = changes["name"]
    if "slug" in changes:
        await _tag_slugs(ctx.org.id).change(session, tag, changes["slug"])
    tag.updated_at = clock.now()
    await session.flush()
    return tag


async def delete_tag(session: AsyncSession, ctx: OrgContext, tag_id: uuid.UUID) -> None:
    """Delete a tag; articles simply lose it."""
    tag = await get_tag(session, ctx, tag_id, for_update=True)
    await session.delete(tag)
    await session.flush()
