"""HTTP caching of the public reads: ETag, Last-Modified, 304s and Cache-Control."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.factories import create_article, create_category, create_tag
from townsquare.auth.models import User
from townsquare.cms.enums import ArticleStatus
from townsquare.cms.models import Article, Category
from townsquare.kit import clock
from townsquare.main import create_app
from townsquare.orgs.models import Organization

DEFAULT_CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=300"


def _url(org: Organization, rest: str = "") -> str:
    return f"/api/v1/public/orgs/{org.slug}{rest}"


async def _published(session: AsyncSession, org: Organization, **fields: object) -> Article:
    return await create_article(session, org, status=ArticleStatus.published, **fields)  # type: ignore[arg-type]


class TestArticle:
    async def test_a_200_carries_validators_and_cache_control(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _published(session, org, slug="hello")
        response = await client.get(_url(org, "/articles/hello"))
        assert response.status_code == 200
        assert response.headers["etag"].startswith('W/"')
        assert response.headers["cache-control"] == DEFAULT_CACHE_CONTROL
        assert response.headers["last-modified"] == format_datetime(
            article.updated_at.replace(microsecond=0), usegmt=True
        )

    async def test_if_none_match_answers_304_without_a_body(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        await _published(session, org, slug="hello")
        first = await client.get(_url(org, "/articles/hello"))
        etag = first.headers["etag"]
        again = await client.get(_url(org, "/articles/hello"), headers={"if-none-match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == DEFAULT_CACHE_CONTROL
        assert again.headers["last-modified"] == first.headers["last-modified"]
        # Weak comparison, lists and `*` as RFC 9110 reads them.
        for header in (etag.removeprefix("W/"), f'"nope", {etag}', "*"):
            response = await client.get(
                _url(org, "/articles/hello"), headers={"if-none-match": header}
            )
            assert response.status_code == 304, header
        other = await client.get(_url(org, "/articles/hello"), headers={"if-none-match": '"x"'})
        assert other.status_code == 200
        assert other.json() == first.json()

    async def test_every_change_a_reader_sees_changes_the_etag(
        self,
        session: AsyncSession,
        editor_client: httpx.AsyncClient,
        org: Organization,
        editor: User,
    ) -> None:
        category = await create_category(session, org, name="News")
        tag = await create_tag(session, org, name="Local")
        article = await _published(session, org, slug="hello", author=editor, category=category)
        url = _url(org, "/articles/hello")
        seen = [(await editor_client.get(url)).headers["etag"]]

        async def changed() -> None:
            response = await editor_client.get(url, headers={"if-none-match": seen[-1]})
            assert response.status_code == 200
            assert response.headers["etag"] not in seen
            seen.append(response.headers["etag"])

        clock.travel(timedelta(seconds=2))
        edited = await editor_client.patch(
            f"/api/v1/orgs/{org.slug}/articles/{article.id}",
            json={"body": "<p>New words</p>", "version": article.version},
        )
        assert edited.status_code == 200, edited.text
        await changed()
        tagged = await editor_client.put(
            f"/api/v1/orgs/{org.slug}/articles/{article.id}/tags",
            json={"tag_ids": [str(tag.id)], "version": edited.json()["version"]},
        )
        assert tagged.status_code == 200, tagged.text
        await changed()
        await session.execute(
            update(Category).where(Category.id == category.id).values(name="Old news")
        )
        await changed()
        await session.execute(update(User).where(User.id == editor.id).values(display_name="Ed"))
        await changed()

    async def test_if_modified_since(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        await _published(session, org, slug="hello")
        url = _url(org, "/articles/hello")
        last_modified = (await client.get(url)).headers["last-modified"]
        same = await client.get(url, headers={"if-modified-since": last_modified})
        assert same.status_code == 304
        older = format_datetime(clock.now() - timedelta(days=1), usegmt=True)
        assert (await client.get(url, headers={"if-modified-since": older})).status_code == 200
        garbage = await client.get(url, headers={"if-modified-since": "yesterday-ish"})
        assert garbage.status_code == 200
        # If-None-Match decides when both are sent.
        both = await client.get(
            url, headers={"if-modified-since": last_modified, "if-none-match": '"other"'}
        )
        assert both.status_code == 200

    async def test_conditional_head(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        await _published(session, org, slug="hello")
        url = _url(org, "/articles/hello")
        get = await client.get(url)
        head = await client.head(url)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["etag"] == get.headers["etag"]
        assert head.headers["content-length"] == get.headers["content-length"]
        conditional = await client.head(url, headers={"if-none-match": get.headers["etag"]})
        assert conditional.status_code == 304

    async def test_unpublished_or_unknown_answers_404_even_with_an_old_etag(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _published(session, org, slug="hello")
        url = _url(org, "/articles/hello")
        etag = (await client.get(url)).headers["etag"]
        await session.execute(
            update(Article).where(Article.id == article.id).values(status=ArticleStatus.draft)
        )
        gone = await client.get(url, headers={"if-none-match": etag})
        assert gone.status_code == 404
        assert "public" not in gone.headers.get("cache-control", "")
        missing = await client.get(_url(org, "/articles/nope"), headers={"if-none-match": "*"})
        assert missing.status_code == 404


class TestListFeedAndOrg:
    async def test_list_revalidates_until_an_article_is_published(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        newest = await _published(session, org)
        url = _url(org, "/articles")
        first = await client.get(url)
        assert first.headers["cache-control"] == DEFAULT_CACHE_CONTROL
        assert first.headers["last-modified"] == format_datetime(
            newest.updated_at.replace(microsecond=0), usegmt=True
        )
        etag = first.headers["etag"]
        assert (await client.get(url, headers={"if-none-match": etag})).status_code == 304
        await _published(session, org)
        after = await client.get(url, headers={"if-none-match": etag})
        assert after.status_code == 200
        assert len(after.json()["items"]) == 2
        assert after.headers["etag"] != etag
        # Each filter and page is its own resource with its own ETag.
        tagged = await client.get(url, params={"tag": "none"}, headers={"if-none-match": etag})
        assert tagged.status_code == 200

    async def test_feed_revalidates(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        await _published(session, org)
        url = _url(org, "/feed.xml")
        first = await client.get(url)
        assert first.headers["cache-control"] == DEFAULT_CACHE_CONTROL
        assert "last-modified" in first.headers
        again = await client.get(url, headers={"if-none-match": first.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""
        head = await client.head(url)
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-type"].startswith("application/atom+xml")

    async def test_empty_feed_keeps_its_etag(
        self, client: httpx.AsyncClient, org: Organization
    ) -> None:
        url = _url(org, "/feed.xml")
        etag = (await client.get(url)).headers["etag"]
        clock.travel(timedelta(minutes=5))
        assert (await client.get(url, headers={"if-none-match": etag})).status_code == 304

    async def test_org_profile_revalidates(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        first = await client.get(_url(org))
        assert first.headers["cache-control"] == DEFAULT_CACHE_CONTROL
        etag = first.headers["etag"]
        assert (await client.get(_url(org), headers={"if-none-match": etag})).status_code == 304
        await session.execute(
            update(Organization).where(Organization.id == org.id).values(name="Renamed")
        )
        renamed = await client.get(_url(org), headers={"if-none-match": etag})
        assert renamed.status_code == 200
        assert renamed.json()["name"] == "Renamed"


async def test_cache_lifetimes_come_from_the_settings(
    db: RolledBackDatabase, session: AsyncSession, org: Organization
) -> None:
    await _published(session, org, slug="hello")
    settings = make_settings(PUBLIC_CACHE_MAX_AGE_SECONDS=5, PUBLIC_CACHE_STALE_SECONDS=0)
    async for client in _client_for(create_app(settings, database=db)):
        for path in ("", "/articles", "/articles/hello", "/feed.xml"):
            response = await client.get(_url(org, path))
            assert response.status_code == 200, path
            assert response.headers["cache-control"] == (
                "public, max-age=5, stale-while-revalidate=0"
            ), path
