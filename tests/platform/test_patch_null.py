"""`null` on PATCH, one rule on every route: a field that cannot be cleared answers 422 naming
it (and nothing changes); a field that may be cleared is cleared.

The table below is written by hand from API.md and the issue that set the rule; every PATCH
route of the app must be in it, so a new one has to decide which of its fields may be null.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from tests.factories import (
    add_member,
    create_article,
    create_category,
    create_organization,
    create_tag,
    create_user,
    sign_in,
)
from townsquare.events.enums import EventStatus
from townsquare.events.models import Event, Shift
from townsquare.main import create_app
from townsquare.media.enums import MediaStatus
from townsquare.media.models import MediaItem
from townsquare.orgs.enums import MemberRole
from townsquare.support.models import CannedResponse

API = "/api/v1"
ME = f"{API}/auth/me"
ORG = f"{API}/orgs/{{org}}"
MEMBER = f"{ORG}/members/{{member_id}}"
CATEGORY = f"{ORG}/categories/{{category_id}}"
TAG = f"{ORG}/tags/{{tag_id}}"
ARTICLE = f"{ORG}/articles/{{article_id}}"
MEDIA = f"{ORG}/media/{{media_id}}"
CANNED = f"{ORG}/canned-responses/{{canned_id}}"
EVENT = f"{ORG}/events/{{event_id}}"
SHIFT = f"{ORG}/events/{{event_id}}/shifts/{{shift_id}}"

NOT_CLEARABLE: dict[str, tuple[str, ...]] = {
    ME: ("display_name", "timezone"),
    ORG: ("name", "slug", "timezone"),
    MEMBER: ("role",),
    CATEGORY: ("name", "slug"),
    TAG: ("name", "slug"),
    ARTICLE: ("title", "slug", "excerpt", "body", "version"),
    MEDIA: ("alt", "title"),  # text without a null: `""` clears it
    CANNED: ("short_code", "text"),
    EVENT: ("title", "description", "starts_at", "ends_at", "timezone", "status"),
    SHIFT: ("title", "description", "starts_at", "ends_at", "capacity"),
}
CLEARABLE: dict[str, tuple[str, ...]] = {
    ME: ("avatar_url",),
    ORG: ("avatar_url",),
    MEMBER: (),
    CATEGORY: ("parent_id",),
    TAG: (),
    ARTICLE: ("category_id", "featured_media_id"),
    MEDIA: (),
    CANNED: (),
    EVENT: ("location",),
    SHIFT: ("location",),
}


def patch_routes() -> set[str]:
    """The path template of every PATCH route of the app."""
    found: set[str] = set()
    for context in iter_route_contexts(create_app(make_settings()).routes):
        route, path = context.original_route, context.path
        if isinstance(route, APIRoute) and path is not None and "PATCH" in (context.methods or ()):
            found.add(path)
    return found


class TestTableCoversTheApp:
    def test_every_patch_route_is_in_the_table(self) -> None:
        missing = sorted(patch_routes() - NOT_CLEARABLE.keys())
        assert not missing, f"PATCH routes without a row in NOT_CLEARABLE/CLEARABLE: {missing}"

    def test_every_row_is_a_patch_route(self) -> None:
        stale = sorted(NOT_CLEARABLE.keys() - patch_routes())
        assert not stale, f"rows for PATCH routes the app does not have: {stale}"
        assert CLEARABLE.keys() == NOT_CLEARABLE.keys()


@dataclass
class Target:
    """One resource behind a PATCH route: where to send the PATCH, how to read it back."""

    url: str
    read: Callable[[], Awaitable[dict[str, Any]]]
    with_every_body: dict[str, Any] = field(default_factory=dict)


async def _targets(session: AsyncSession, client: httpx.AsyncClient) -> dict[str, Target]:
    """An owner signed in on `client`, and one resource for every route of the table."""
    owner = await create_user(session, display_name="Olga Owner")
    owner.avatar_url = "https://example.com/olga.png"
    org = await create_organization(session, owner=owner)
    org.avatar_url = "https://example.com/acme.png"
    colleague = await create_user(session, display_name="Carl Colleague")
    membership = await add_member(session, org, colleague, MemberRole.editor)
    parent = await create_category(session, org)
    category = await create_category(session, org, parent=parent)
    tag = await create_tag(session, org)
    article = await create_article(session, org, author=owner, category=category)
    media = MediaItem(
        organization_id=org.id,
        uploaded_by_id=owner.id,
        status=MediaStatus.ready,
        storage_key=f"{org.id}/{uuid.uuid4()}.png",
        filename="poster.png",
        content_type="image/png",
        size=1024,
        width=32,
        height=32,
        alt="A poster",
        title="Poster",
    )
    canned = CannedResponse(organization_id=org.id, short_code="refund", text="We refund.")
    starts_at = datetime(2030, 6, 1, 8, tzinfo=UTC)
    event = Event(
        organization_id=org.id,
        title="Summer fair",
        description="<p>Fun</p>",
        location="Town hall",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=10),
        timezone="Europe/Paris",
        status=EventStatus.published,
    )
    session.add_all([media, canned, event])
    await session.flush()
    shift = Shift(
        organization_id=org.id,
        event_id=event.id,
        title="Bar",
        location="Gate 2",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=4),
        capacity=5,
    )
    session.add(shift)
    await session.flush()
    await sign_in(session, client, owner)

    orgs = f"{API}/orgs/{org.slug}"

    def reader(url: str, *, fresh: tuple[str, ...] = ()) -> Callable[[], Awaitable[dict[str, Any]]]:
        """GET `url`; `fresh` names fields made anew on every read (signed URLs)."""

        async def read() -> dict[str, Any]:
            response = await client.get(url)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return {key: value for key, value in body.items() if key not in fresh}

        return read

    async def read_member() -> dict[str, Any]:
        response = await client.get(f"{orgs}/members", params={"per_page": 100})
        assert response.status_code == 200, response.text
        [member] = [m for m in response.json()["items"] if m["id"] == str(membership.id)]
        return dict(member)

    return {
        ME: Target(ME, reader(ME)),
        ORG: Target(orgs, reader(orgs)),
        MEMBER: Target(f"{orgs}/members/{membership.id}", read_member),
        CATEGORY: Target(
            f"{orgs}/categories/{category.id}", reader(f"{orgs}/categories/{category.id}")
        ),
        TAG: Target(f"{orgs}/tags/{tag.id}", reader(f"{orgs}/tags/{tag.id}")),
        ARTICLE: Target(
            f"{orgs}/articles/{article.id}",
            reader(f"{orgs}/articles/{article.id}"),
            with_every_body={"version": article.version},
        ),
        MEDIA: Target(
            f"{orgs}/media/{media.id}",
            reader(f"{orgs}/media/{media.id}", fresh=("url", "url_expires_at", "variants")),
        ),
        CANNED: Target(
            f"{orgs}/canned-responses/{canned.id}",
            reader(f"{orgs}/canned-responses/{canned.id}"),
        ),
        EVENT: Target(f"{orgs}/events/{event.id}", reader(f"{orgs}/events/{event.id}")),
        SHIFT: Target(
            f"{orgs}/events/{event.id}/shifts/{shift.id}",
            reader(f"{orgs}/events/{event.id}/shifts/{shift.id}"),
        ),
    }


def _cases(table: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    return [(route, name) for route, names in table.items() for name in names]


def _ids(cases: list[tuple[str, str]]) -> list[str]:
    return [f"PATCH {route.removeprefix(API)} {name}" for route, name in cases]


NOT_CLEARABLE_CASES = _cases(NOT_CLEARABLE)
CLEARABLE_CASES = _cases(CLEARABLE)


@pytest.mark.parametrize(("route", "name"), NOT_CLEARABLE_CASES, ids=_ids(NOT_CLEARABLE_CASES))
async def test_null_for_a_field_that_cannot_be_cleared_is_422(
    route: str, name: str, session: AsyncSession, client: httpx.AsyncClient
) -> None:
    target = (await _targets(session, client))[route]
    before = await target.read()
    # With `version` itself null, a real change rides along: it must not happen either.
    body = {**target.with_every_body, name: None}
    if name == "version":
        body["title"] = "A title that must not be saved"

    response = await client.patch(target.url, json=body)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error", problem
    named = [error["field"] for error in problem.get("errors", [])]
    assert name in named, f"422 without {name!r} in its errors: {problem}"
    assert await target.read() == before


@pytest.mark.parametrize(("route", "name"), CLEARABLE_CASES, ids=_ids(CLEARABLE_CASES))
async def test_null_clears_a_field_that_may_be_cleared(
    route: str, name: str, session: AsyncSession, client: httpx.AsyncClient
) -> None:
    target = (await _targets(session, client))[route]

    response = await client.patch(target.url, json={**target.with_every_body, name: None})

    assert response.status_code == 200, response.text
    assert response.json()[name] is None
    assert (await target.read())[name] is None
