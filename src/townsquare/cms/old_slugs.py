"""Old slugs: an article's former slugs keep answering, with a 301 to its current one."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.cms.models import Article, ArticleOldSlug


async def remember(session: AsyncSession, article: Article, previous: str) -> None:
    """After `article` moved from the slug `previous` to its current one: `previous` now
    redirects to it (taken over from any article that left it before), and its current
    slug, live again, redirects nowhere."""
    await session.execute(
        delete(ArticleOldSlug).where(
            ArticleOldSlug.organization_id == article.organization_id,
            ArticleOldSlug.slug.in_([previous, article.slug]),
        )
    )
    session.add(
        ArticleOldSlug(
            organization_id=article.organization_id, slug=previous, article_id=article.id
        )
    )
    await session.flush()
