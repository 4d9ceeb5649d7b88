"""The public read API: published articles only, cursor paging, filters, the Atom feed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Route

from tests.conftest import _client_for, make_settings, postgres_only
from tests.factories import (
    create_article,
    create_category,
    create_organization,
    create_tag,
    create_user,
)
from townsquare.cms.enums import ArticleStatus
from townsquare.config import Settings
from townsquare.db import Database
from townsquare.kit import clock
from townsquare.kit.pagination import encode_cursor
from townsquare.main import create_app
from townsquare.orgs.enums import Module
from townsquare.orgs.models import Organization
from townsquare.read_pool import READ_POOL_APPLICATION_NAME

ATOM = "{http://www.w3.org/2005/Atom}"
ITEM_KEYS = {"id", "slug", "title", "excerpt", "published_at", "author", "category", "tags"}


def _url(org: Organization, rest: str = "articles") -> str:
    return f"/api/v1/public/orgs/{org.slug}/{rest}"


async def _walk(client: httpx.AsyncClient, url: str, **params: str | int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query: dict[str, str | int] = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


async def _one_of_each_status(session: AsyncSession, org: Organization) -> dict[str, str]:
    slugs = {}
    for status in ArticleStatus:
        article = await create_article(
            session,
            org,
            slug=f"the-{status.value}",
            status=status,
            scheduled_publish_at=clock.now() + timedelta(hours=1)
            if status == ArticleStatus.scheduled
            else None,
        )
        slugs[status.value] = article.slug
    return slugs


class TestRegistration:
    def test_public_routes_sit_flat_ahead_of_the_included_routers(self, app: FastAPI) -> None:
        routes = app.router.routes
        public = [i for i, r in enumerate(routes) if isinstance(r, Route) and "/public/" in r.path]
        first_included = next(i for i, r in enumerate(routes) if not isinstance(r, Route))
        assert len(public) == 4
        assert max(public) < first_included

    async def test_public_routes_are_documented(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/api/openapi.json")).json()["paths"]
        schemas = {
            "/api/v1/public/orgs/{org}/articles": "PublicArticlePage",
            "/api/v1/public/orgs/{org}/articles/{slug}": "PublicArticle",
        }
        for path, schema in schemas.items():
            operation = paths[path]["get"]
            assert operation["tags"] == ["public"]
            assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
                "$ref": f"#/components/schemas/{schema}"
            }
            assert "404" in operation["responses"]
        feed = paths["/api/v1/public/orgs/{org}/feed.xml"]["get"]
        assert "application/atom+xml" in feed["responses"]["200"]["content"]


class TestOnlyPublished:
    async def test_list_article_and_feed_show_only_published(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        slugs = await _one_of_each_status(session, org)
        listed = await client.get(_url(org))
        assert [i["slug"] for i in listed.json()["items"]] == [slugs["published"]]
        for status, slug in slugs.items():
            response = await client.get(_url(org, f"articles/{slug}"))
            assert response.status_code == (200 if status == "published" else 404), status
        feed = await client.get(_url(org, "feed.xml"))
        assert feed.headers["content-type"].startswith("application/atom+xml")
        entries = ET.fromstring(feed.content).findall(f"{ATOM}entry")
        assert [e.find(f"{ATOM}title").text for e in entries] == [  # type: ignore[union-attr]
            (await client.get(_url(org, f"articles/{slugs['published']}"))).json()["title"]
        ]

    async def test_filtered_lists_show_only_published(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        category = await create_category(session, org, slug="news")
        tag = await create_tag(session, org, slug="featured")
        for status in ArticleStatus:
            await create_article(
                session, org, status=status, category=category, tags=[tag], slug=status.value
            )
        for params in ({"category": "news"}, {"tag": "featured"}):
            items = (await client.get(_url(org), params=params)).json()["items"]
            assert [i["slug"] for i in items] == ["published"], params


class TestShape:
    async def test_item_and_article_shape(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        author = await create_user(session, display_name="Ann Author")
        category = await create_category(session, org, name="News", slug="news")
        tags = [
            await create_tag(session, org, name="Zeta", slug="zeta"),
            await create_tag(session, org, name="Alpha", slug="alpha"),
        ]
        article = await create_article(
            session, org, author=author, title="Fair", slug="fair", excerpt="Come",
            body="<p>All welcome</p>", status=ArticleStatus.published,
            category=category, tags=tags,
        )  # fmt: skip
        [item] = (await client.get(_url(org))).json()["items"]
        assert set(item) == ITEM_KEYS
        assert item["id"] == str(article.id)
        assert item["author"] == {"id": str(author.id), "display_name": "Ann Author"}
        assert item["category"] == {"slug": "news", "name": "News"}
        assert item["tags"] == [
            {"slug": "alpha", "name": "Alpha"},
            {"slug": "zeta", "name": "Zeta"},
        ]
        assert item["published_at"].endswith("Z")
        single = (await client.get(_url(org, "articles/fair"))).json()
        assert set(single) == ITEM_KEYS | {"body"}
        assert single["body"] == "<p>All welcome</p>"
        assert {k: single[k] for k in ITEM_KEYS} == item

    async def test_without_author_category_or_tags(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        await create_article(session, org, slug="bare", status=ArticleStatus.published)
        item = (await client.get(_url(org, "articles/bare"))).json()
        assert (item["author"], item["category"], item["tags"]) == (None, None, [])


class TestCursorPaging:
    async def test_walks_every_published_article_once(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        base = clock.now()
        expected = []
        for n in range(23):
            # Several share one published_at: the id breaks the tie.
            when = base - timedelta(minutes=n // 3)
            article = await create_article(
                session, org, status=ArticleStatus.published, published_at=when
            )
            expected.append((when, article.id))
        await create_article(session, org, status=ArticleStatus.draft)
        items = await _walk(client, _url(org), limit=5)
        ids = [i["id"] for i in items]
        assert len(ids) == len(set(ids)) == 23
        expected.sort(key=lambda pair: (pair[0], str(pair[1])), reverse=True)
        assert [i["published_at"] for i in items] == [
            when.isoformat().replace("+00:00", "Z") for when, _ in expected
        ]

    async def test_walks_a_tag_and_a_category(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        tag = await create_tag(session, org, slug="t")
        category = await create_category(session, org, slug="c")
        for n in range(7):
            await create_article(
                session, org, status=ArticleStatus.published,
                published_at=clock.now() - timedelta(minutes=n % 3),
                tags=[tag] if n % 2 else [], category=category if n < 5 else None,
            )  # fmt: skip
        tagged = await _walk(client, _url(org), tag="t", limit=2)
        assert len({i["id"] for i in tagged}) == len(tagged) == 3
        in_category = await _walk(client, _url(org), category="c", limit=2)
        assert len({i["id"] for i in in_category}) == len(in_category) == 5
        assert (await client.get(_url(org), params={"tag": "nope"})).json()["items"] == []

    async def test_limit_bounds_and_bad_cursor(
        self, client: httpx.AsyncClient, org: Organization
    ) -> None:
        assert (await client.get(_url(org), params={"limit": 101})).status_code == 422
        assert (await client.get(_url(org), params={"limit": 0})).status_code == 422
        crafted = [
            encode_cursor({"p": "0001-01-01T00:00:00+14:00", "i": str(uuid.UUID(int=0))}),
            encode_cursor({"p": "9999-12-31T23:59:59-14:00", "i": str(uuid.UUID(int=0))}),
            encode_cursor({"p": "2020-01-01T00:00:00+00:00", "i": 5}),
            encode_cursor({"p": "2020-01-01T00:00:00", "i": str(uuid.UUID(int=0))}),
        ]
        for cursor in ("not-a-cursor!", "eyJ4IjoxfQ", *crafted):
            for params in ({}, {"tag": "t"}, {"category": "c"}):
                response = await client.get(_url(org), params={"cursor": cursor, **params})
                assert response.status_code == 400
                assert response.json()["code"] == "invalid_cursor"


class TestUnavailable:
    async def test_module_off_or_unknown_org_is_404(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        org = await create_organization(session, modules=(Module.events,))
        await create_article(session, org, slug="x", status=ArticleStatus.published)
        for rest in ("articles", "articles/x", "feed.xml"):
            assert (await client.get(_url(org, rest))).status_code == 404, rest
            unknown = f"/api/v1/public/orgs/no-such-org/{rest}"
            assert (await client.get(unknown)).status_code == 404, rest

    async def test_odd_paths_and_params_never_fail(
        self, client: httpx.AsyncClient, org: Organization
    ) -> None:
        for url, params in (
            (_url(org, "articles/%00"), {}),
            ("/api/v1/public/orgs/%00/articles", {}),
            (_url(org), {"tag": "\x00"}),
            (_url(org), {"category": "a b"}),
        ):
            response = await client.get(url, params=params)
            assert response.status_code in (404, 422), (url, response.status_code)

    async def test_empty_org_lists_nothing(
        self, client: httpx.AsyncClient, org: Organization
    ) -> None:
        body = (await client.get(_url(org))).json()
        assert body == {"items": [], "next_cursor": None}
        feed = ET.fromstring((await client.get(_url(org, "feed.xml"))).content)
        assert feed.findall(f"{ATOM}entry") == []


class TestFeed:
    async def test_feed_escapes_titles_and_bodies(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        await create_article(
            session, org, title='Fish & <Chips> "tonight"\x01', slug="fish",
            body="<p>a &amp; b</p>", status=ArticleStatus.published,
        )  # fmt: skip
        response = await client.get(_url(org, "feed.xml"))
        feed = ET.fromstring(response.content)
        entry = feed.find(f"{ATOM}entry")
        assert entry is not None
        assert entry.findtext(f"{ATOM}title") == 'Fish & <Chips> "tonight"'
        content = entry.find(f"{ATOM}content")
        assert content is not None
        assert (content.get("type"), content.text) == ("html", "<p>a &amp; b</p>")
        link = entry.find(f"{ATOM}link")
        assert link is not None
        assert link.get("href") == f"http://testserver/o/{org.slug}/articles/fish"
        assert b"<Chips>" not in response.content


class TestDatabaseTrouble:
    async def test_unreachable_database_is_503(self) -> None:
        settings = make_settings(DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/nothing")
        database = Database(settings)
        try:
            async for client in _client_for(create_app(settings, database=database)):
                response = await client.get("/api/v1/public/orgs/acme/articles")
                assert response.status_code == 503
                assert response.json()["code"] == "database_unavailable"
                assert "nobody" not in response.text
        finally:
            await database.dispose()

    @postgres_only
    async def test_dropped_connections_are_replaced_without_failing_a_request(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with committed_db.session() as session:
            org = await create_organization(session)
            await create_article(session, org, slug="a", status=ArticleStatus.published)
            await session.commit()
        async for client in _client_for(create_app(settings, database=committed_db)):
            assert (await client.get(_url(org, "articles/a"))).status_code == 200
            async with committed_db.session() as session:
                killed = await session.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name AND datname = current_database()"
                    ),
                    {"name": READ_POOL_APPLICATION_NAME},
                )
            assert killed
            for _ in range(3):
                assert (await client.get(_url(org, "articles/a"))).status_code == 200


class TestOnARealPool:
    async def test_reads_through_the_pool(self, committed_db: Database, settings: Settings) -> None:
        async with committed_db.session() as session:
            org = await create_organization(session)
            for n in range(3):
                await create_article(
                    session, org, slug=f"a-{n}", status=ArticleStatus.published,
                    published_at=clock.now() - timedelta(minutes=n),
                )  # fmt: skip
            await create_article(session, org, slug="draft")
            await session.commit()
        async for client in _client_for(create_app(settings, database=committed_db)):
            items = await _walk(client, _url(org), limit=2)
            assert [i["slug"] for i in items] == ["a-0", "a-1", "a-2"]
            assert (await client.get(_url(org, "articles/a-1"))).json()["slug"] == "a-1"
            assert (await client.get(_url(org, "articles/draft"))).status_code == 404
            assert (await client.get(_url(org, "feed.xml"))).status_code == 200
