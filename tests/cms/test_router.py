"""CMS management endpoints over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.cms.test_sanitize import XSS_PAYLOADS, assert_safe
from tests.conftest import _client_for
from tests.factories import (
    add_member,
    create_article,
    create_category,
    create_media,
    create_organization,
    create_tag,
    create_user,
    sign_in,
)
from townsquare.auth.models import User
from townsquare.cms.enums import ArticleStatus
from townsquare.cms.models import Article, ArticleTag
from townsquare.config import Settings
from townsquare.db import Database
from townsquare.kit import clock
from townsquare.main import create_app
from townsquare.orgs.enums import MemberRole, Module
from townsquare.orgs.models import AuditLogEntry, Organization


def _url(org: Organization, rest: str = "") -> str:
    return f"/api/v1/orgs/{org.slug}/{rest}".rstrip("/")


async def _create(client: httpx.AsyncClient, org: Organization, **body: object) -> dict[str, Any]:
    response = await client.post(_url(org, "articles"), json={"title": "Hello", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _error_fields(response: httpx.Response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


class TestAccess:
    async def test_member_without_cms_write_gets_403(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        member = await create_user(session)
        await add_member(session, org, member, MemberRole.member)
        await sign_in(session, client, member)
        response = await client.get(_url(org, "articles"))
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"

    async def test_outsider_gets_404_and_anonymous_401(
        self, session: AsyncSession, client: httpx.AsyncClient, org: Organization
    ) -> None:
        assert (await client.get(_url(org, "articles"))).status_code == 401
        await sign_in(session, client, await create_user(session))
        response = await client.get(_url(org, "articles"))
        assert response.status_code == 404

    async def test_module_off_is_403(
        self, session: AsyncSession, client: httpx.AsyncClient, editor: User
    ) -> None:
        org = await create_organization(session, owner=editor, modules=(Module.events,))
        await sign_in(session, client, editor)
        response = await client.post(_url(org, "articles"), json={"title": "x"})
        assert response.status_code == 403
        assert response.json()["code"] == "module_disabled"


class TestCreate:
    async def test_creates_a_draft(
        self, editor_client: httpx.AsyncClient, org: Organization, editor: User
    ) -> None:
        body = await _create(editor_client, org, title="Spring Fair", excerpt="Come along")
        assert body["slug"] == "spring-fair"
        assert body["status"] == "draft"
        assert body["version"] == 1
        assert body["author"] == {"id": str(editor.id), "display_name": "Edna Editor"}
        assert body["tags"] == []

    async def test_explicit_slug_taken_is_409(
        self, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        await _create(editor_client, org, slug="fair")
        response = await editor_client.post(
            _url(org, "articles"), json={"title": "Other", "slug": "fair"}
        )
        assert response.status_code == 409
        assert response.json()["code"] == "slug_taken"
        assert response.json()["suggestion"] == "fair-2"

    async def test_status_and_org_cannot_be_set(
        self, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        response = await editor_client.post(
            _url(org, "articles"),
            json={"title": "x", "status": "published", "organization_id": str(uuid.uuid4())},
        )
        assert response.status_code == 422

    async def test_control_characters_and_out_of_range_numbers_are_422(
        self, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        bad = [
            editor_client.post(_url(org, "articles"), json={"title": "a\x00b"}),
            editor_client.post(_url(org, "articles"), json={"title": "x", "excerpt": "\x00"}),
            editor_client.post(_url(org, "tags"), json={"name": "a\x01"}),
            editor_client.get(_url(org, "articles"), params={"q": "a\x00"}),
            editor_client.get(_url(org, "articles"), params={"tag": "Not A Slug"}),
            editor_client.post(_url(org, f"articles/{uuid.uuid4()}/revisions/{2**40}/restore")),
        ]
        for call in bad:
            response = await call
            assert response.status_code == 422, response.text

    async def test_xss_bodies_are_sanitized(
        self, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        for payload in XSS_PAYLOADS:
            body = await _create(editor_client, org, body=f"<p>ok</p>{payload}")
            assert_safe(body["body"])
            stored = await editor_client.get(_url(org, f"articles/{body['id']}"))
            assert_safe(stored.json()["body"])


class TestUpdate:
    @pytest.mark.parametrize("if_match", ['"1"', "1", 'W/"1"'])
    async def test_if_match_forms(
        self, editor_client: httpx.AsyncClient, org: Organization, if_match: str
    ) -> None:
        article = await _create(editor_client, org)
        response = await editor_client.patch(
            _url(org, f"articles/{article['id']}"),
            json={"title": "Renamed"},
            headers={"If-Match": if_match},
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 2
        assert response.headers["ETag"] == '"2"'

    async def test_stale_version_is_409_and_changes_nothing(
        self, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _create(editor_client, org)
        url = _url(org, f"articles/{article['id']}")
        first = await editor_client.patch(url, json={"title": "Mine", "version": 1})
        assert first.status_code == 200
        stale = await editor_client.patch(url, json={"title": "Theirs", "version": 1})
        assert stale.status_code == 409
        assert stale.json()["code"] == "edit_conflict"
        assert stale.json()["current_version"] == 2
        current = (await editor_client.get(url)).json()
        assert (current["title"], current["version"]) == ("Mine", 2)

    async def test_missing_version_is_428(
        self, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _create(editor_client, org)
        response = await editor_client.patch(
            _url(org, f"articles/{article['id']}"), json={"title": "x"}
        )
        assert response.status_code == 428
        assert response.json()["code"] == "version_required"

    async def test_taken_slug_is_409(
        self, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        await _create(editor_client, org, slug="one")
        two = await _create(editor_client, org, slug="two")
        response = await editor_client.patch(
            _url(org, f"articles/{two['id']}"), json={"slug": "one", "version": 1}
        )
        assert response.status_code == 409
        assert response.json()["code"] == "slug_taken"


class TestNullOnPatch:
    """A field that cannot be cleared answers 422 naming it when sent as `null`; the row
    stays as it was (`updated_at` included)."""

    @pytest.mark.parametrize("field", ["title", "slug", "excerpt", "body", "version"])
    async def test_article(
        self, editor_client: httpx.AsyncClient, org: Organization, field: str
    ) -> None:
        article = await _create(editor_client, org, excerpt="Short", body="<p>Long</p>")
        url = _url(org, f"articles/{article['id']}")
        response = await editor_client.patch(
            url, json={field: None}, headers={"If-Match": str(article["version"])}
        )
        assert response.status_code == 422, response.text
        assert _error_fields(response) == [field]
        assert (await editor_client.get(url)).json() == article

    async def test_article_category_and_media_clear_with_null(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        category = await create_category(session, org)
        media = await create_media(session, org)
        article = await _create(
            editor_client, org, category_id=str(category.id), featured_media_id=str(media.id)
        )
        response = await editor_client.patch(
            _url(org, f"articles/{article['id']}"),
            json={"category_id": None, "featured_media_id": None, "version": 1},
        )
        assert response.status_code == 200, response.text
        assert (response.json()["category_id"], response.json()["featured_media_id"]) == (
            None,
            None,
        )


class TestFeaturedMedia:
    async def test_must_be_a_media_item_of_the_same_org(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        theirs = await create_media(session, await create_organization(session))
        for media_id in (theirs.id, uuid.uuid4()):
            response = await editor_client.post(
                _url(org, "articles"), json={"title": "Hello", "featured_media_id": str(media_id)}
            )
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["field"] == "featured_media_id"
            assert response.json()["errors"][0]["code"] == "media_not_found"
        article = await _create(editor_client, org)
        response = await editor_client.patch(
            _url(org, f"articles/{article['id']}"),
            json={"featured_media_id": str(theirs.id), "version": 1},
        )
        assert response.status_code == 422, response.text
        ours = await create_media(session, org)
        response = await editor_client.patch(
            _url(org, f"articles/{article['id']}"),
            json={"featured_media_id": str(ours.id), "version": 1},
        )
        assert response.status_code == 200, response.text
        assert response.json()["featured_media_id"] == str(ours.id)


class TestOtherOrgIds:
    async def test_another_orgs_article_is_404_and_untouched(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        theirs = await create_article(
            session, await create_organization(session), title="Theirs",
            status=ArticleStatus.published,
        )  # fmt: skip
        url = _url(org, f"articles/{theirs.id}")
        calls = [
            editor_client.get(url),
            editor_client.patch(url, json={"title": "Mine", "version": 1}),
            editor_client.post(f"{url}/unpublish", json={"version": 1}),
            editor_client.put(f"{url}/tags", json={"tag_ids": [], "version": 1}),
            editor_client.delete(url),
        ]
        for call in calls:
            response = await call
            assert response.status_code == 404
            assert response.json()["code"] == "article_not_found"
        await session.refresh(theirs)
        assert (theirs.title, theirs.status) == ("Theirs", ArticleStatus.published)


class TestStatusChanges:
    async def test_publish_unpublish_archive(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _create(editor_client, org)
        url = _url(org, f"articles/{article['id']}")
        published = await editor_client.post(f"{url}/publish", json={"version": 1})
        assert published.status_code == 200
        assert published.json()["status"] == "published"
        assert published.json()["published_at"] is not None
        assert published.json()["version"] == 2
        again = await editor_client.post(f"{url}/publish", headers={"If-Match": '"2"'})
        assert again.status_code == 409
        assert again.json()["code"] == "invalid_status_transition"
        assert (again.json()["status"], again.json()["article_status"]) == (409, "published")
        archived = await editor_client.post(f"{url}/archive", headers={"If-Match": '"2"'})
        assert archived.json()["status"] == "archived"
        draft = await editor_client.post(f"{url}/unpublish", json={"version": 3})
        assert draft.json()["status"] == "draft"
        actions = list(
            await session.scalars(
                select(AuditLogEntry.action)
                .where(AuditLogEntry.target_id == article["id"])
                .order_by(AuditLogEntry.created_at)
            )
        )
        assert actions == ["article.published", "article.archived", "article.unpublished"]

    async def test_schedule_in_the_past_is_422(
        self, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _create(editor_client, org)
        url = _url(org, f"articles/{article['id']}/schedule")
        past = (clock.now() - timedelta(minutes=1)).isoformat()
        response = await editor_client.post(url, json={"publish_at": past, "version": 1})
        assert response.status_code == 422
        assert response.json()["code"] == "publish_at_in_past"
        future = (clock.now() + timedelta(hours=2)).isoformat()
        response = await editor_client.post(url, json={"publish_at": future, "version": 1})
        assert response.status_code == 200
        assert response.json()["status"] == "scheduled"

    async def test_delete(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _create(editor_client, org)
        url = _url(org, f"articles/{article['id']}")
        assert (await editor_client.delete(url)).status_code == 204
        assert (await editor_client.get(url)).status_code == 404
        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.target_id == article["id"])
        )
        assert entry is not None
        assert entry.action == "article.deleted"


class TestRevisions:
    async def test_list_and_restore(
        self, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _create(editor_client, org, title="First", body="<p>One</p>")
        url = _url(org, f"articles/{article['id']}")
        await editor_client.patch(url, json={"title": "Second", "version": 1})
        listed = (await editor_client.get(f"{url}/revisions")).json()
        assert (listed["page"], listed["per_page"], listed["total"]) == (1, 20, 2)
        assert [(r["number"], r["title"], r["reason"]) for r in listed["items"]] == [
            (2, "Second", "edited"),
            (1, "First", "created"),
        ]
        restored = await editor_client.post(f"{url}/revisions/1/restore", json={"version": 2})
        assert restored.status_code == 200
        assert (restored.json()["title"], restored.json()["version"]) == ("First", 3)
        revisions = (await editor_client.get(f"{url}/revisions")).json()["items"]
        assert (revisions[0]["number"], revisions[0]["reason"]) == (3, "restored")
        second_page = await editor_client.get(f"{url}/revisions", params={"per_page": 2, "page": 2})
        assert [r["number"] for r in second_page.json()["items"]] == [1]
        assert second_page.json()["total"] == 3
        missing = await editor_client.post(f"{url}/revisions/42/restore", json={"version": 3})
        assert missing.status_code == 404


class TestTagsOfAnArticle:
    async def test_put_replaces_the_set(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        a = await create_tag(session, org, name="Alpha", slug="alpha")
        b = await create_tag(session, org, name="Beta", slug="beta")
        article = await _create(editor_client, org)
        url = _url(org, f"articles/{article['id']}/tags")
        response = await editor_client.put(
            url, json={"tag_ids": [str(a.id), str(b.id)], "version": 1}
        )
        assert [t["slug"] for t in response.json()["tags"]] == ["alpha", "beta"]
        response = await editor_client.put(
            url, json={"tag_ids": [str(b.id)]}, headers={"If-Match": '"2"'}
        )
        assert [t["slug"] for t in response.json()["tags"]] == ["beta"]
        assert response.json()["version"] == 3

    async def test_foreign_tag_is_422_and_nothing_changes(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        mine = await create_tag(session, org)
        theirs = await create_tag(session, await create_organization(session))
        article = await _create(editor_client, org)
        url = _url(org, f"articles/{article['id']}/tags")
        await editor_client.put(url, json={"tag_ids": [str(mine.id)], "version": 1})
        response = await editor_client.put(
            url, json={"tag_ids": [str(mine.id), str(theirs.id)], "version": 2}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["code"] == "tag_not_found"
        rows = list(
            await session.scalars(
                select(ArticleTag.tag_id).where(ArticleTag.article_id == uuid.UUID(article["id"]))
            )
        )
        assert rows == [mine.id]


class TestList:
    async def test_filters_and_page_shape(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        news = await create_category(session, org, slug="news")
        for n in range(3):
            await create_article(session, org, title=f"News {n}", category=news)
        await create_article(session, org, title="Other", status=ArticleStatus.published)
        response = await editor_client.get(
            _url(org, "articles"), params={"category": "news", "per_page": 2, "q": "NEWS"}
        )
        body = response.json()
        assert (body["total"], body["page"], body["per_page"], len(body["items"])) == (3, 1, 2, 2)
        assert "body" not in body["items"][0]
        published = await editor_client.get(_url(org, "articles"), params={"status": "published"})
        assert [i["title"] for i in published.json()["items"]] == ["Other"]

    async def test_by_slug_finds_drafts(
        self, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        article = await _create(editor_client, org, title="Draft Thing")
        response = await editor_client.get(_url(org, "articles/by-slug/draft-thing"))
        assert response.json()["id"] == article["id"]
        assert (await editor_client.get(_url(org, "articles/by-slug/nope"))).status_code == 404


class TestConcurrentCreates:
    async def test_fifty_same_title_creates_get_distinct_slugs(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with committed_db.session() as session:
            editor = await create_user(session)
            org = await create_organization(session, owner=editor)
            await session.commit()
        app = create_app(settings, database=committed_db)
        async for client in _client_for(app):
            async with committed_db.session() as session:
                await sign_in(session, client, editor)
                await session.commit()
            responses = await asyncio.gather(
                *(client.post(_url(org, "articles"), json={"title": "Big News"}) for _ in range(50))
            )
        statuses = [r.status_code for r in responses]
        assert all(s in (201, 409) for s in statuses), statuses
        slugs = [r.json()["slug"] for r in responses if r.status_code == 201]
        assert len(slugs) == len(set(slugs)) == statuses.count(201)
        assert "big-news" in slugs
        async with committed_db.session() as session:
            stored = await session.scalar(
                select(func.count()).select_from(Article).where(Article.organization_id == org.id)
            )
        assert stored == len(slugs)
