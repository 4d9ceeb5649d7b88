"""The public list's search and category tree, the feed's filters and links, old slugs,
and the organization's public profile."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.factories import create_article, create_category, create_organization, create_tag
from townsquare.cms.enums import ArticleStatus
from townsquare.cms.models import Article
from townsquare.config import Settings
from townsquare.kit import clock
from townsquare.kit.pagination import encode_cursor
from townsquare.main import create_app
from townsquare.orgs.enums import Module
from townsquare.orgs.models import Organization

ATOM = "{http://www.w3.org/2005/Atom}"


def _url(org: Organization, rest: str = "") -> str:
    return f"/api/v1/public/orgs/{org.slug}{rest}"


async def _published(session: AsyncSession, org: Organization, **fields: Any) -> Article:
    return await create_article(session, org, status=ArticleStatus.published, **fields)


async def _slugs(client: httpx.AsyncClient, url: str, **params: str | int) -> list[str]:
    """Every item's slug, walking the cursor."""
    slugs: list[str] = []
    cursor = None
    for _ in range(50):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        slugs.extend(item["slug"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return slugs
    raise AssertionError("the cursor never ended")


def _feed_slugs(feed: bytes) -> list[str]:
    entries = ET.fromstring(feed).findall(f"{ATOM}entry")
    return [
        (e.find(f"{ATOM}link").get("href") or "").rsplit("/", 1)[-1]  # type: ignore[union-attr]
        for e in entries
    ]


class TestSearch:
    async def test_ranked_by_where_the_words_are(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        now = clock.now()
        await _published(
            session,
            org,
            slug="in-body",
            title="Notes",
            body="<p>The harbour festival returns</p>",
            published_at=now,
        )
        await _published(
            session,
            org,
            slug="in-title",
            title="Harbour festival",
            body="<p>Music</p>",
            published_at=now - timedelta(days=3),
        )
        await _published(
            session,
            org,
            slug="in-excerpt",
            title="Weekend",
            excerpt="The harbour festival",
            published_at=now - timedelta(days=1),
        )
        await _published(session, org, slug="one-word", title="Harbour works")
        await create_article(session, org, slug="draft", title="Harbour festival draft")
        other = await create_organization(session)
        await _published(session, other, slug="elsewhere", title="Harbour festival")
        found = await _slugs(client, _url(org, "/articles"), q="harbour FESTIVAL")
        assert found == ["in-title", "in-excerpt", "in-body"]

    async def test_pages_through_every_match_once(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        now = clock.now()
        expected = set()
        for n in range(7):
            article = await _published(
                session,
                org,
                title=f"Market day {n}",
                body="<p>market " * (n % 3 + 1) + "</p>",
                published_at=now - timedelta(hours=n % 2),
            )
            expected.add(article.slug)
        await _published(session, org, title="Unrelated")
        found = await _slugs(client, _url(org, "/articles"), q="market", limit=2)
        assert sorted(found) == sorted(expected)

    async def test_finds_an_edited_body(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _published(session, org, slug="changing", body="<p>before</p>")
        await session.execute(
            update(Article).where(Article.id == article.id).values(body="<p>afterwards</p>")
        )
        assert await _slugs(client, _url(org, "/articles"), q="afterwards") == ["changing"]
        assert await _slugs(client, _url(org, "/articles"), q="before") == []

    async def test_syntax_of_any_kind_is_just_text(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        await _published(session, org, slug="quote", title="Say cheese")
        for q in ['"', "'", "cheese*", "title:cheese", "(cheese", "NOT", "!!!", "a & | b", "\\"]:
            response = await client.get(_url(org, "/articles"), params={"q": q})
            assert response.status_code == 200, (q, response.text)
        assert await _slugs(client, _url(org, "/articles"), q='"say"') == ["quote"]
        for refused in ("", "a\x00b", "tab\there", "x" * 201):
            response = await client.get(_url(org, "/articles"), params={"q": refused})
            assert response.status_code == 422, refused

    async def test_combines_with_category_and_tag(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        news = await create_category(session, org, slug="news")
        local = await create_tag(session, org, slug="local")
        await _published(session, org, slug="both", title="Rain", category=news, tags=[local])
        await _published(session, org, slug="news-only", title="Rain", category=news)
        await _published(session, org, slug="tag-only", title="Rain", tags=[local])
        url = _url(org, "/articles")
        assert sorted(await _slugs(client, url, q="rain", category="news")) == [
            "both",
            "news-only",
        ]
        assert sorted(await _slugs(client, url, q="rain", tag="local")) == ["both", "tag-only"]
        assert await _slugs(client, url, q="rain", tag="local", category="news") == ["both"]

    async def test_a_cursor_of_another_list_is_refused(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        for _ in range(3):
            await _published(session, org, title="Rain")
        plain = (await client.get(_url(org, "/articles"), params={"limit": 1})).json()
        searched = await client.get(
            _url(org, "/articles"), params={"q": "rain", "cursor": plain["next_cursor"]}
        )
        assert searched.status_code == 400
        ranked = (await client.get(_url(org, "/articles"), params={"q": "rain", "limit": 1})).json()
        listed = await client.get(_url(org, "/articles"), params={"cursor": ranked["next_cursor"]})
        assert listed.status_code == 400
        forged = encode_cursor({"p": "2026-01-01T00:00:00Z", "i": "x", "r": "high"})
        response = await client.get(_url(org, "/articles"), params={"q": "rain", "cursor": forged})
        assert response.status_code == 400

    async def test_unknown_org_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/public/orgs/nobody/articles", params={"q": "x"})
        assert response.status_code == 404


class TestCategoryTree:
    async def test_a_category_includes_its_subcategories(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        sport = await create_category(session, org, slug="sport")
        football = await create_category(session, org, slug="football", parent=sport)
        youth = await create_category(session, org, slug="youth", parent=football)
        other = await create_category(session, org, slug="culture")
        now = clock.now()
        for n, category in enumerate((sport, football, youth, other, youth)):
            await _published(
                session,
                org,
                slug=f"a{n}-{category.slug}",
                category=category,
                published_at=now - timedelta(minutes=n),
            )
        url = _url(org, "/articles")
        assert await _slugs(client, url, category="sport", limit=2) == [
            "a0-sport",
            "a1-football",
            "a2-youth",
            "a4-youth",
        ]
        assert await _slugs(client, url, category="football") == [
            "a1-football",
            "a2-youth",
            "a4-youth",
        ]
        assert await _slugs(client, url, category="youth") == ["a2-youth", "a4-youth"]
        assert await _slugs(client, url, category="nothing") == []

    async def test_with_a_tag(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        sport = await create_category(session, org, slug="sport")
        football = await create_category(session, org, slug="football", parent=sport)
        hot = await create_tag(session, org, slug="hot")
        await _published(session, org, slug="tagged-child", category=football, tags=[hot])
        await _published(session, org, slug="untagged-child", category=football)
        await _published(session, org, slug="tagged-elsewhere", tags=[hot])
        url = _url(org, "/articles")
        assert await _slugs(client, url, category="sport", tag="hot", limit=1) == ["tagged-child"]

    async def test_another_orgs_category_of_the_same_slug_is_not_followed(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        other = await create_organization(session)
        theirs = await create_category(session, other, slug="sport")
        await _published(session, other, slug="theirs", category=theirs)
        mine = await create_category(session, org, slug="sport")
        await _published(session, org, slug="mine", category=mine)
        assert await _slugs(client, _url(org, "/articles"), category="sport") == ["mine"]


class TestFeed:
    async def test_filtered_by_category_tree_and_tag(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        sport = await create_category(session, org, slug="sport")
        football = await create_category(session, org, slug="football", parent=sport)
        hot = await create_tag(session, org, slug="hot")
        now = clock.now()
        await _published(session, org, slug="child", category=football, published_at=now)
        await _published(
            session, org, slug="hot-one", tags=[hot], published_at=now - timedelta(minutes=1)
        )
        await _published(session, org, slug="plain", published_at=now - timedelta(minutes=2))
        url = _url(org, "/feed.xml")
        assert _feed_slugs((await client.get(url)).content) == ["child", "hot-one", "plain"]
        by_category = await client.get(url, params={"category": "sport"})
        assert _feed_slugs(by_category.content) == ["child"]
        self_link = ET.fromstring(by_category.content).find(f"{ATOM}link")
        assert self_link is not None
        assert (self_link.get("href") or "").endswith("/feed.xml?category=sport")
        by_tag = await client.get(url, params={"tag": "hot"})
        assert _feed_slugs(by_tag.content) == ["hot-one"]
        bad = await client.get(url, params={"tag": "Not A Slug"})
        assert bad.status_code == 422

    async def test_entries_link_to_the_public_article_url(
        self, db: RolledBackDatabase, session: AsyncSession, org: Organization
    ) -> None:
        await _published(session, org, slug="hello")
        settings = make_settings(PUBLIC_ARTICLE_URL="https://news.example.org/{org}/{slug}.html")
        async for client in _client_for(create_app(settings, database=db)):
            feed = await client.get(_url(org, "/feed.xml"))
            link = ET.fromstring(feed.content).find(f"{ATOM}entry/{ATOM}link")
            assert link is not None
            assert link.get("href") == f"https://news.example.org/{org.slug}/hello.html"

    def test_the_article_url_must_name_org_and_slug(self) -> None:
        for bad in ("https://x.example/{slug}", "https://x.example/{org}", "{org}/{slug}/{id}"):
            with pytest.raises(ValidationError, match="PUBLIC_ARTICLE_URL"):
                Settings(PUBLIC_ARTICLE_URL=bad)
        good = Settings(PUBLIC_ARTICLE_URL="{public_url}/{org}/{slug}")
        assert good.PUBLIC_ARTICLE_URL == "{public_url}/{org}/{slug}"


class TestOldSlugs:
    async def _rename(
        self, client: httpx.AsyncClient, org: Organization, article_id: str, slug: str
    ) -> None:
        url = f"/api/v1/orgs/{org.slug}/articles/{article_id}"
        current = (await client.get(url)).json()
        response = await client.patch(url, json={"slug": slug, "version": current["version"]})
        assert response.status_code == 200, response.text

    async def test_old_slugs_redirect_to_the_current_one(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _published(session, org, slug="first")
        await self._rename(editor_client, org, str(article.id), "second")
        await self._rename(editor_client, org, str(article.id), "third")
        for old in ("first", "second"):
            response = await editor_client.get(_url(org, f"/articles/{old}"))
            assert response.status_code == 301, old
            assert response.headers["location"] == _url(org, "/articles/third")
            assert "max-age" in response.headers["cache-control"]
        followed = await editor_client.get(_url(org, "/articles/first"), follow_redirects=True)
        assert followed.status_code == 200
        assert followed.json()["slug"] == "third"
        # Back to an old slug: it answers itself again.
        await self._rename(editor_client, org, str(article.id), "first")
        assert (await editor_client.get(_url(org, "/articles/first"))).status_code == 200
        moved = await editor_client.get(_url(org, "/articles/third"))
        assert moved.headers["location"] == _url(org, "/articles/first")

    async def test_an_article_taking_an_old_slug_wins(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _published(session, org, slug="taken")
        await self._rename(editor_client, org, str(article.id), "moved")
        await _published(session, org, slug="taken", title="The new one")
        response = await editor_client.get(_url(org, "/articles/taken"))
        assert response.status_code == 200
        assert response.json()["title"] == "The new one"

    async def test_no_redirect_to_an_unpublished_article_or_across_orgs(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _published(session, org, slug="old")
        await self._rename(editor_client, org, str(article.id), "new")
        other = await create_organization(session)
        await _published(session, other, slug="new")
        elsewhere = await editor_client.get(f"/api/v1/public/orgs/{other.slug}/articles/old")
        assert elsewhere.status_code == 404
        await session.execute(
            update(Article).where(Article.id == article.id).values(status=ArticleStatus.draft)
        )
        response = await editor_client.get(_url(org, "/articles/old"))
        assert response.status_code == 404
        assert "new" not in response.text

    async def test_a_deleted_article_leaves_no_redirect(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _published(session, org, slug="old")
        await self._rename(editor_client, org, str(article.id), "new")
        deleted = await editor_client.delete(f"/api/v1/orgs/{org.slug}/articles/{article.id}")
        assert deleted.status_code == 204
        assert (await editor_client.get(_url(org, "/articles/old"))).status_code == 404


class TestOrgProfile:
    async def test_profile(self, session: AsyncSession, client: httpx.AsyncClient) -> None:
        org = await create_organization(
            session,
            name="Harbour Club",
            slug="harbour",
            timezone="Europe/Berlin",
            modules=(Module.events, Module.cms),
        )
        await session.execute(
            update(Organization)
            .where(Organization.id == org.id)
            .values(avatar_url="https://img.example/a.png")
        )
        response = await client.get("/api/v1/public/orgs/harbour")
        assert response.status_code == 200
        assert response.json() == {
            "name": "Harbour Club",
            "slug": "harbour",
            "avatar_url": "https://img.example/a.png",
            "timezone": "Europe/Berlin",
            "modules": ["cms", "events"],
        }

    async def test_without_modules_and_unknown(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        org = await create_organization(session, modules=())
        response = await client.get(_url(org))
        assert response.status_code == 200
        assert response.json()["modules"] == []
        assert response.json()["avatar_url"] is None
        missing = await client.get("/api/v1/public/orgs/nobody-here")
        assert missing.status_code == 404
        assert missing.json()["code"] == "not_found"
