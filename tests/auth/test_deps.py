"""The session cookie, CSRF token and Origin checks that guard every signed-in request."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import API, register_and_login, session_cookie
from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.factories import create_user, sign_in
from townsquare.auth import sessions
from townsquare.auth.deps import (
    ForeignOrigin,
    authenticate_handshake,
    normalize_origin,
    origin_allowed,
)
from townsquare.auth.models import User, UserSession
from townsquare.config import Settings
from townsquare.db import Database
from townsquare.kit.tokens import hash_token
from townsquare.main import create_app


async def _display_name(session: AsyncSession, user: User) -> str:
    name = await session.scalar(
        select(User.display_name)
        .where(User.id == user.id)
        .execution_options(populate_existing=True)
    )
    assert name is not None
    return name


async def _session_count(session: AsyncSession, user: User) -> int:
    count = await session.scalar(
        select(func.count()).select_from(UserSession).where(UserSession.user_id == user.id)
    )
    return int(count or 0)


class TestCurrentUser:
    async def test_signed_in_client_is_the_user(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session, display_name="Ada")
        await sign_in(session, client, user)
        response = await client.get(f"{API}/auth/me")
        assert response.status_code == 200
        assert response.json()["email"] == user.email
        assert response.json()["display_name"] == "Ada"
        assert response.json()["organizations"] == []

    async def test_anonymous_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"{API}/auth/me")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "not_authenticated"

    async def test_unknown_cookie_is_401(self, client: httpx.AsyncClient) -> None:
        client.cookies.set("townsquare_session", "not-a-real-token")
        assert (await client.get(f"{API}/auth/me")).status_code == 401

    async def test_deactivated_user_is_401(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        user.is_active = False
        await session.flush()
        assert (await client.get(f"{API}/auth/me")).status_code == 401


class TestCsrf:
    @pytest.mark.parametrize(
        ("headers", "drop_token"),
        [
            ({}, True),
            ({"X-CSRF-Token": "forged-token-value"}, False),
            ({"X-CSRF-Token": ""}, False),
            ({"Origin": "https://evil.example"}, False),
            ({"Origin": "null"}, False),
            ({"Origin": "http://testserver.evil.example"}, False),
        ],
    )
    async def test_refused_and_nothing_changes(
        self,
        session: AsyncSession,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        drop_token: bool,
    ) -> None:
        user = await create_user(session, display_name="Before")
        await sign_in(session, client, user)
        if drop_token:
            del client.headers["X-CSRF-Token"]
        for method, path, body in (
            ("PATCH", "/auth/me", {"display_name": "After"}),
            ("POST", "/auth/logout", None),
            ("POST", "/auth/change-password", {"current_password": "x", "new_password": "y"}),
        ):
            response = await client.request(method, f"{API}{path}", json=body, headers=headers)
            assert response.status_code == 403, (method, path)
            assert response.json()["code"] == "csrf_failed"
        assert await _display_name(session, user) == "Before"
        assert await _session_count(session, user) == 1

    async def test_token_of_another_session_is_refused(
        self, session: AsyncSession, client: httpx.AsyncClient, new_client: object
    ) -> None:
        user = await create_user(session, display_name="Before")
        await sign_in(session, client, user)
        other = await new_client()  # type: ignore[operator]
        other_token = await sign_in(session, other, await create_user(session))
        response = await client.patch(
            f"{API}/auth/me", json={"display_name": "After"}, headers={"X-CSRF-Token": other_token}
        )
        assert response.status_code == 403
        assert await _display_name(session, user) == "Before"

    async def test_own_origin_and_token_pass(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        response = await client.patch(
            f"{API}/auth/me",
            json={"display_name": "After"},
            headers={"Origin": "http://testserver"},
        )
        assert response.status_code == 200
        assert await _display_name(session, user) == "After"

    async def test_allowed_origins_setting(
        self, session: AsyncSession, db: RolledBackDatabase
    ) -> None:
        settings = make_settings(ALLOWED_ORIGINS="https://app.example.org")
        user = await create_user(session, display_name="Before")
        async for client in _client_for(create_app(settings, database=db)):
            await sign_in(session, client, user)
            allowed = await client.patch(
                f"{API}/auth/me",
                json={"display_name": "From app"},
                headers={"Origin": "https://APP.example.org:443"},
            )
            assert allowed.status_code == 200
            refused = await client.patch(
                f"{API}/auth/me",
                json={"display_name": "From elsewhere"},
                headers={"Origin": "https://other.example.org"},
            )
            assert refused.status_code == 403
        assert await _display_name(session, user) == "From app"

    async def test_safe_requests_need_no_token(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        del client.headers["X-CSRF-Token"]
        assert (await client.get(f"{API}/auth/me")).status_code == 200

    async def test_register_from_foreign_origin_refused(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            f"{API}/auth/register",
            json={
                "email": "lured@example.org",
                "password": "a-fine-Password-88",
                "display_name": "Lured",
            },
            headers={"Origin": "https://evil.example"},
        )
        assert response.status_code == 403
        assert await session.scalar(select(User).where(User.email == "lured@example.org")) is None


class TestOrigins:
    def test_normalize(self) -> None:
        assert normalize_origin("HTTPS://Example.org:443/") == "https://example.org"
        assert normalize_origin("http://example.org:8080") == "http://example.org:8080"
        assert normalize_origin("null") is None
        assert normalize_origin("http://[::1]:80") == "http://[::1]"

    def test_public_url_origin_is_allowed(self) -> None:
        settings = make_settings(PUBLIC_URL="https://town.example.org/base/")
        assert origin_allowed(settings, "https://town.example.org")
        assert origin_allowed(settings, None)
        assert not origin_allowed(settings, "http://town.example.org")
        assert not origin_allowed(settings, "https://town.example.org.evil.com")


class TestActivity:
    async def test_get_request_records_activity_in_its_own_transaction(
        self, committed_db: Database, committed_client: httpx.AsyncClient, clock: ModuleType
    ) -> None:
        response = await register_and_login(committed_client)
        assert response.status_code == 200
        token = session_cookie(committed_client)
        clock.travel(timedelta(hours=2))
        assert (await committed_client.get(f"{API}/auth/me")).status_code == 200
        async with committed_db.session() as check:
            record = await check.scalar(
                select(UserSession).where(UserSession.token_hash == hash_token(token))
            )
        assert record is not None
        assert clock.now() - record.last_seen_at < timedelta(minutes=1)


class TestHandshake:
    async def test_cookie_and_origin(self, session: AsyncSession, settings: Settings) -> None:
        user = await create_user(session)
        issued = await sessions.start_session(session, settings, user)
        cookies = {settings.SESSION_COOKIE_NAME: issued.token}
        auth = await authenticate_handshake(
            session, settings, cookies=cookies, origin="http://testserver"
        )
        assert auth is not None
        assert auth.user.id == user.id
        assert await authenticate_handshake(session, settings, cookies={}, origin=None) is None
        with pytest.raises(ForeignOrigin):
            await authenticate_handshake(
                session, settings, cookies=cookies, origin="https://evil.example"
            )
