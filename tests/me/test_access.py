"""Who may call the signed-in person's own routes. They are not org-scoped, so the org
matrix (tests/orgs/matrix.py) does not list them: each answers 401 `not_authenticated` to
an anonymous caller, and an unsafe one refuses a session cookie without the CSRF token
(403 `csrf_failed`) and changes nothing. Every personal route of the app (`/me/...`,
`/auth/me...`) is listed here or in tests/events/test_me_access.py."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from tests.events import test_me_access as events_access
from tests.factories import DEFAULT_PASSWORD, create_user, sign_in
from townsquare.auth.deps import CSRF_HEADER
from townsquare.main import create_app

API = "/api/v1"
SOME_ID = str(uuid.uuid4())

ROUTES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", f"{API}/auth/me"): {},
    ("PATCH", f"{API}/auth/me"): {"json": {"display_name": "Changed"}},
    ("DELETE", f"{API}/auth/me"): {"json": {"password": DEFAULT_PASSWORD}},
    ("POST", f"{API}/auth/me/email"): {
        "json": {"email": "new-address@example.org", "password": DEFAULT_PASSWORD}
    },
    ("GET", f"{API}/me/export"): {},
    ("GET", f"{API}/me/invitations"): {},
    ("POST", f"{API}/me/invitations/{{invitation_id}}/accept"): {},
    ("GET", f"{API}/me/conversations"): {},
}
ELSEWHERE = {*events_access.ROUTES, ("GET", events_access.FEED)}


def personal_routes() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(create_app(make_settings()).routes):
        route, path = context.original_route, context.path
        if not isinstance(route, APIRoute) or path is None:
            continue
        if path.startswith((f"{API}/me/", f"{API}/auth/me")):
            found.update((m, path) for m in context.methods or () if m != "HEAD")
    return found


def _url(path: str) -> str:
    return path.replace("{invitation_id}", SOME_ID)


class TestTableCoversTheApp:
    def test_every_personal_route_is_listed(self) -> None:
        missing = personal_routes() - ROUTES.keys() - ELSEWHERE
        assert not missing, f"personal routes without an access rule: {sorted(missing)}"

    def test_every_entry_is_a_route(self) -> None:
        assert not ROUTES.keys() - personal_routes()


UNSAFE = sorted(key for key in ROUTES if key[0] != "GET")


@pytest.mark.parametrize(
    ("method", "path"), sorted(ROUTES), ids=[f"{m} {p}" for m, p in sorted(ROUTES)]
)
async def test_anonymous_is_401(method: str, path: str, client: httpx.AsyncClient) -> None:
    response = await client.request(method, _url(path), **ROUTES[(method, path)])
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "path"), UNSAFE, ids=[f"{m} {p}" for m, p in UNSAFE])
async def test_unsafe_needs_the_csrf_token(
    method: str, path: str, session: AsyncSession, client: httpx.AsyncClient
) -> None:
    user = await create_user(session, display_name="Kept")
    await sign_in(session, client, user)
    del client.headers[CSRF_HEADER]

    response = await client.request(method, _url(path), **ROUTES[(method, path)])

    assert response.status_code == 403, response.text
    assert response.json()["code"] == "csrf_failed"
    me = (await client.get(f"{API}/auth/me")).json()
    assert (me["display_name"], me["email"]) == ("Kept", user.email)
