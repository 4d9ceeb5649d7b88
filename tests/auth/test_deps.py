"""The session cookie, CSRF token and Origin checks that guard every signed-in request."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_user, sign_in
from townsquare.auth.models import UserSession


class TestCurrentUser:
    async def test_signed_in_client_is_the_user(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session, display_name="Ada")
        await sign_in(session, client, user)
        response = await client.get("/api/v1/auth/me")
        assert response.status_code == 200
        assert response.json()["email"] == user.email
        assert response.json()["display_name"] == "Ada"
        assert response.json()["organizations"] == []

    async def test_anonymous_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/auth/me")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"

    async def test_unknown_cookie_is_401(self, client: httpx.AsyncClient) -> None:
        client.cookies.set("townsquare_session", "not-a-real-token")
        response = await client.get("/api/v1/auth/me")
        assert response.status_code == 401


class TestCsrf:
    async def test_unsafe_request_without_token_is_refused_and_changes_nothing(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        del client.headers["X-CSRF-Token"]
        response = await client.post("/api/v1/auth/logout")
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_failed"
        count = await session.scalar(
            select(func.count()).select_from(UserSession).where(UserSession.user_id == user.id)
        )
        assert count == 1
        assert (await client.get("/api/v1/auth/me")).status_code == 200

    async def test_unsafe_request_with_token_works(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        response = await client.post("/api/v1/auth/logout")
        assert response.status_code == 204
        client.cookies.clear()
        assert (await client.get("/api/v1/auth/me")).status_code == 401
