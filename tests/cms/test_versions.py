"""One rule for article versions: every change of what an editor sees (fields, tags, status,
schedule, a restored revision) carries the version the client last saw and bumps it; a
stale one is 409 `edit_conflict`, none is 428 `version_required`; nothing else bumps it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import _client_for
from tests.factories import (
    create_article,
    create_organization,
    create_tag,
    create_user,
    sign_in,
)
from townsquare.cms import publishing
from townsquare.cms.enums import ArticleStatus, RevisionReason
from townsquare.cms.models import Article, ArticleRevision, Tag
from townsquare.config import Settings
from townsquare.db import Database
from townsquare.kit import clock
from townsquare.main import create_app
from townsquare.orgs.models import Organization


def _url(org: Organization, article: Article, rest: str = "") -> str:
    return f"/api/v1/orgs/{org.slug}/articles/{article.id}{rest}"


def _future() -> str:
    return (clock.now() + timedelta(hours=1)).isoformat()


# (method, path suffix, body without version, status the article must be in first)
ACTIONS: list[tuple[str, str, dict[str, Any], ArticleStatus]] = [
    ("POST", "/publish", {}, ArticleStatus.draft),
    ("POST", "/unpublish", {}, ArticleStatus.published),
    ("POST", "/archive", {}, ArticleStatus.published),
    ("POST", "/schedule", {"publish_at": "FUTURE"}, ArticleStatus.draft),
    ("POST", "/revisions/1/restore", {}, ArticleStatus.draft),
    ("PUT", "/tags", {"tag_ids": "TAG"}, ArticleStatus.draft),
]
IDS = [f"{method} {path}" for method, path, _, _ in ACTIONS]


async def _prepared(session: AsyncSession, org: Organization, status: ArticleStatus) -> Article:
    """An article at version 3 whose revision 1 differs from what it holds now."""
    article = await create_article(session, org, title="Now", status=status)
    session.add(
        ArticleRevision(
            article_id=article.id,
            organization_id=org.id,
            number=1,
            title="Then",
            excerpt="",
            body="<p>Then</p>",
            reason=RevisionReason.created,
            created_at=clock.now(),
        )
    )
    article.version = 3
    await session.flush()
    return article


def _body(template: dict[str, Any], tag: Tag, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in template.items():
        body[key] = {"FUTURE": _future(), "TAG": [str(tag.id)]}.get(value, value)
    return {**body, **extra}


async def _state(session: AsyncSession, article: Article) -> tuple[object, ...]:
    fresh = await session.scalar(
        select(Article).where(Article.id == article.id).execution_options(populate_existing=True)
    )
    assert fresh is not None
    return (fresh.version, fresh.status, fresh.title, fresh.scheduled_publish_at)


@pytest.mark.parametrize(("method", "path", "template", "status"), ACTIONS, ids=IDS)
async def test_without_a_version_is_428_and_changes_nothing(
    session: AsyncSession,
    editor_client: httpx.AsyncClient,
    org: Organization,
    method: str,
    path: str,
    template: dict[str, Any],
    status: ArticleStatus,
) -> None:
    article = await _prepared(session, org, status)
    tag = await create_tag(session, org)
    before = await _state(session, article)

    response = await editor_client.request(
        method, _url(org, article, path), json=_body(template, tag) or None
    )

    assert response.status_code == 428, response.text
    assert response.json()["code"] == "version_required"
    assert await _state(session, article) == before


@pytest.mark.parametrize(("method", "path", "template", "status"), ACTIONS, ids=IDS)
async def test_a_stale_version_is_409_and_changes_nothing(
    session: AsyncSession,
    editor_client: httpx.AsyncClient,
    org: Organization,
    method: str,
    path: str,
    template: dict[str, Any],
    status: ArticleStatus,
) -> None:
    article = await _prepared(session, org, status)
    tag = await create_tag(session, org)
    before = await _state(session, article)

    in_body = await editor_client.request(
        method, _url(org, article, path), json=_body(template, tag, version=2)
    )
    in_header = await editor_client.request(
        method,
        _url(org, article, path),
        json=_body(template, tag) or None,
        headers={"If-Match": '"2"'},
    )

    for response in (in_body, in_header):
        assert response.status_code == 409, response.text
        assert (response.json()["code"], response.json()["current_version"]) == (
            "edit_conflict",
            3,
        )
    assert await _state(session, article) == before


@pytest.mark.parametrize(("method", "path", "template", "status"), ACTIONS, ids=IDS)
async def test_the_current_version_applies_and_bumps_once(
    session: AsyncSession,
    editor_client: httpx.AsyncClient,
    org: Organization,
    method: str,
    path: str,
    template: dict[str, Any],
    status: ArticleStatus,
) -> None:
    article = await _prepared(session, org, status)
    tag = await create_tag(session, org)

    response = await editor_client.request(
        method, _url(org, article, path), json=_body(template, tag, version=3)
    )

    assert response.status_code == 200, response.text
    assert response.json()["version"] == 4
    assert response.headers["ETag"] == '"4"'
    assert (await _state(session, article))[0] == 4


async def test_a_concurrent_editors_save_conflicts_only_after_a_change_it_did_not_see(
    session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
) -> None:
    created = await editor_client.post(
        f"/api/v1/orgs/{org.slug}/articles", json={"title": "Draft", "body": "<p>One</p>"}
    )
    article = await session.get_one(Article, uuid.UUID(created.json()["id"]))
    tag = await create_tag(session, org, name="Old name")
    tags_url = _url(org, article, "/tags")
    tagged = await editor_client.put(tags_url, json={"tag_ids": [str(tag.id)], "version": 1})
    assert tagged.json()["version"] == 2

    # Not changes of the article: the same tag set again, a restore of what it already
    # holds, a tag renamed, a PATCH that sends what is there.
    same = await editor_client.put(tags_url, json={"tag_ids": [str(tag.id)], "version": 2})
    restore_same = await editor_client.post(
        _url(org, article, "/revisions/1/restore"), json={"version": 2}
    )
    renamed = await editor_client.patch(
        f"/api/v1/orgs/{org.slug}/tags/{tag.id}", json={"name": "New name"}
    )
    patch_same = await editor_client.patch(
        _url(org, article), json={"title": "Draft", "version": 2}
    )
    assert [r.status_code for r in (same, restore_same, renamed, patch_same)] == [200] * 4
    assert [r.json()["version"] for r in (same, restore_same, patch_same)] == [2, 2, 2]

    # The other editor, who loaded version 2, saves without a conflict.
    saved = await editor_client.patch(
        _url(org, article), json={"body": "<p>Mine</p>", "version": 2}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 3


async def test_scheduled_publication_bumps_the_version(
    session: AsyncSession, org: Organization, settings: Settings
) -> None:
    """The deferred half of a checked `schedule`: what editors see changes (the status)."""
    due = await create_article(
        session,
        org,
        status=ArticleStatus.scheduled,
        scheduled_publish_at=clock.now() - timedelta(minutes=1),
    )
    await session.execute(update(Article).where(Article.id == due.id).values(version=5))
    await session.refresh(due)

    assert await publishing.publish_due_articles(session, now=clock.now(), settings=settings) == 1

    assert (due.status, due.version) == (ArticleStatus.published, 6)


@pytest.mark.committed
async def test_concurrent_actions_on_one_version_apply_once(
    committed_db: Database, settings: Settings
) -> None:
    async with committed_db.session() as session:
        editor = await create_user(session)
        org = await create_organization(session, owner=editor)
        article = await create_article(session, org, title="Race")
        tags = [await create_tag(session, org) for _ in range(6)]
        await session.commit()
    app = create_app(settings, database=committed_db)
    async for client in _client_for(app):
        async with committed_db.session() as session:
            await sign_in(session, client, editor)
            await session.commit()
        responses = await asyncio.gather(
            client.post(_url(org, article, "/publish"), json={"version": 1}),
            *(
                client.put(_url(org, article, "/tags"), json={"tag_ids": [str(t.id)], "version": 1})
                for t in tags
            ),
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 6, [r.text for r in responses]
    async with committed_db.session() as session:
        stored = await session.scalar(select(Article.version).where(Article.id == article.id))
    assert stored == 2
