"""The /auth and /admin/users endpoints, as a client sees them."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import (
    API,
    STRONG_PASSWORD,
    login,
    outbox_bodies,
    register,
    session_cookie,
    unique_email,
    use_session_cookie,
)
from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.factories import DEFAULT_PASSWORD, create_organization, create_user, sign_in
from townsquare.auth import sessions as auth_sessions
from townsquare.auth.models import User, UserSession
from townsquare.auth.router import REGISTERED
from townsquare.config import Settings
from townsquare.kit import clock
from townsquare.main import create_app
from townsquare.orgs.enums import MemberRole


async def _reload(session: AsyncSession, user: User) -> User:
    fresh = await session.scalar(
        select(User).where(User.id == user.id).execution_options(populate_existing=True)
    )
    assert fresh is not None
    return fresh


async def _session_count(session: AsyncSession, user: User) -> int:
    count = await session.scalar(
        select(func.count()).select_from(UserSession).where(UserSession.user_id == user.id)
    )
    return int(count or 0)


class TestRegister:
    async def test_creates_account_without_signing_in(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        email = unique_email()
        response = await register(client, email=email.upper(), display_name="  Grace  ")
        assert response.status_code == 202
        assert response.json() == {"detail": REGISTERED}
        assert "townsquare_session" not in response.cookies
        assert (await client.get(f"{API}/auth/me")).status_code == 401
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        assert (user.display_name, user.is_staff, user.email_verified_at, user.timezone) == (
            "Grace",
            False,
            None,
            "UTC",
        )
        [verification] = await outbox_bodies(session, email)
        assert "verify-email?token=" in verification
        signed_in = await login(client, email, STRONG_PASSWORD)
        assert signed_in.status_code == 200
        body = signed_in.json()
        assert body["user"]["email"] == email
        assert body["user"]["email_verified"] is False
        assert signed_in.cookies.get("csrftoken") == body["csrf_token"]
        set_cookie = signed_in.headers.get_list("set-cookie")
        session_header = next(h for h in set_cookie if h.startswith("townsquare_session="))
        assert "HttpOnly" in session_header
        assert "SameSite=lax" in session_header
        csrf_header = next(h for h in set_cookie if h.startswith("csrftoken="))
        assert "HttpOnly" not in csrf_header
        me = await client.get(f"{API}/auth/me")
        assert me.status_code == 200
        assert me.json()["email"] == email

    async def test_is_staff_is_refused(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        email = unique_email()
        response = await register(client, email=email, is_staff=True)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "is_staff"
        assert await session.scalar(select(User).where(User.email == email)) is None

    async def test_an_existing_address_answers_alike_and_its_owner_is_emailed(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session, email=unique_email(), display_name="Owner")
        fresh = await register(client)
        taken = await register(client, email=user.email.upper(), display_name="Intruder")
        assert (taken.status_code, taken.json()) == (fresh.status_code, fresh.json())
        assert taken.status_code == 202
        assert "townsquare_session" not in taken.cookies
        [notice] = await outbox_bodies(session, user.email)
        assert "already" in notice
        assert "token=" not in notice
        count = await session.scalar(
            select(func.count()).select_from(User).where(User.email == user.email)
        )
        assert count == 1
        await session.refresh(user)
        assert user.display_name == "Owner"

    async def test_timezone_is_validated(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        response = await register(client, timezone="Mars/Olympus_Mons")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "timezone"
        email = unique_email()
        ok = await register(client, email=email, timezone="Europe/Paris")
        assert ok.status_code == 202
        assert await session.scalar(select(User.timezone).where(User.email == email)) == (
            "Europe/Paris"
        )

    async def test_default_timezone_comes_from_settings(
        self, session: AsyncSession, db: RolledBackDatabase
    ) -> None:
        settings = make_settings(DEFAULT_TIMEZONE="America/Chicago")
        app = create_app(settings, database=db)
        email = unique_email()
        async for client in _client_for(app):
            response = await register(client, email=email)
            assert response.status_code == 202
        assert await session.scalar(select(User.timezone).where(User.email == email)) == (
            "America/Chicago"
        )

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("display_name", ""),
            ("display_name", "x" * 101),
            ("email", "not-an-email"),
            ("email", "a" * 250 + "@example.org"),
        ],
    )
    async def test_lengths_and_formats(
        self, client: httpx.AsyncClient, field: str, value: str
    ) -> None:
        response = await register(client, **{field: value})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field


class TestPasswordRules:
    async def test_nine_characters_refused(self, client: httpx.AsyncClient) -> None:
        response = await register(client, password="Zq9#kP2$w")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "password"

    async def test_ten_and_128_characters_accepted(self, client: httpx.AsyncClient) -> None:
        assert (await register(client, password="Zq9#kP2$wL")).status_code == 202
        assert (await register(client, password="Zq9#kP2$wL" * 12 + "abcdefgh")).status_code == 202

    async def test_129_characters_refused(self, client: httpx.AsyncClient) -> None:
        response = await register(client, password="Zq9#kP2$wL" * 12 + "abcdefghi")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "password"

    async def test_common_password_refused(self, client: httpx.AsyncClient) -> None:
        for common in ("password123", "1234567890", "QWERTYUIOP"):
            response = await register(client, password=common)
            assert response.status_code == 422, common
            assert "common" in response.json()["errors"][0]["message"]

    async def test_email_as_password_refused(self, client: httpx.AsyncClient) -> None:
        email = unique_email()
        response = await register(client, email=email, password=email.upper())
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "password"

    async def test_no_truncation(self, session: AsyncSession, client: httpx.AsyncClient) -> None:
        password = "Long-passphrase-" + "q" * 83 + "Z"
        assert len(password) == 100
        email = unique_email()
        assert (await register(client, email=email, password=password)).status_code == 202
        assert (await login(client, email, password[:-1])).status_code == 401
        assert (await login(client, email, password)).status_code == 200


class TestLogin:
    async def test_unknown_email_and_wrong_password_look_alike(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        wrong = await login(client, user.email, "not-the-password-at-all")
        unknown = await login(client, unique_email(), "not-the-password-at-all")
        assert wrong.status_code == unknown.status_code == 401
        strip = {"request_id"}
        wrong_body = {k: v for k, v in wrong.json().items() if k not in strip}
        unknown_body = {k: v for k, v in unknown.json().items() if k not in strip}
        assert wrong_body == unknown_body
        assert wrong_body["code"] == "invalid_credentials"

    async def test_email_is_case_insensitive(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        response = await login(client, "  " + user.email.upper(), DEFAULT_PASSWORD)
        assert response.status_code == 200
        assert response.json()["user"]["id"] == str(user.id)

    async def test_rotates_session_and_csrf_token(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        old_csrf = await sign_in(session, client, user)
        old_token = session_cookie(client)
        response = await login(client, user.email, DEFAULT_PASSWORD)
        assert response.status_code == 200
        new_token = session_cookie(client)
        assert new_token != old_token
        assert response.json()["csrf_token"] != old_csrf
        assert (await client.get(f"{API}/auth/me")).status_code == 200
        use_session_cookie(client, old_token)
        assert (await client.get(f"{API}/auth/me")).status_code == 401

    async def test_deactivated_user_cannot_sign_in(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session, is_active=False)
        response = await login(client, user.email, DEFAULT_PASSWORD)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_credentials"

    async def test_foreign_origin_refused(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        response = await client.post(
            f"{API}/auth/login",
            json={"email": user.email, "password": DEFAULT_PASSWORD},
            headers={"Origin": "https://evil.example"},
        )
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_failed"
        assert "townsquare_session" not in response.cookies


class TestLogout:
    async def test_old_cookie_stops_working(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        token = session_cookie(client)
        response = await client.post(f"{API}/auth/logout")
        assert response.status_code == 204
        assert await _session_count(session, user) == 0
        use_session_cookie(client, token)
        assert (await client.get(f"{API}/auth/me")).status_code == 401

    async def test_anonymous_logout_is_harmless(self, client: httpx.AsyncClient) -> None:
        assert (await client.post(f"{API}/auth/logout")).status_code == 204


class TestMe:
    async def test_lists_organizations_with_role_and_avatar(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        org = await create_organization(session, owner=user, name="Harbour Club")
        org.avatar_url = "https://cdn.example.org/harbour.png"
        await session.flush()
        await sign_in(session, client, user)
        response = await client.get(f"{API}/auth/me")
        assert response.status_code == 200
        assert response.json()["organizations"] == [
            {
                "id": str(org.id),
                "name": "Harbour Club",
                "slug": org.slug,
                "role": MemberRole.owner.value,
                "avatar_url": "https://cdn.example.org/harbour.png",
            }
        ]

    async def test_update_profile(self, session: AsyncSession, client: httpx.AsyncClient) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        response = await client.patch(
            f"{API}/auth/me",
            json={
                "display_name": "New Name",
                "timezone": "Asia/Tokyo",
                "avatar_url": "https://img.example.org/me.png",
            },
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["display_name"], body["timezone"], body["avatar_url"]) == (
            "New Name",
            "Asia/Tokyo",
            "https://img.example.org/me.png",
        )
        cleared = await client.patch(f"{API}/auth/me", json={"avatar_url": None})
        assert cleared.json()["avatar_url"] is None
        assert cleared.json()["display_name"] == "New Name"

    @pytest.mark.parametrize(
        "body",
        [
            {"is_staff": True},
            {"email": "someone-else@example.org"},
            {"timezone": "Nowhere/Land"},
            {"display_name": ""},
            {"display_name": None},
            {"avatar_url": "javascript:alert(1)"},
        ],
    )
    async def test_refuses_fields_it_may_not_set(
        self, session: AsyncSession, client: httpx.AsyncClient, body: dict[str, object]
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        response = await client.patch(f"{API}/auth/me", json=body)
        assert response.status_code == 422
        fresh = await _reload(session, user)
        assert fresh.is_staff is False
        assert fresh.email == user.email


class TestSessions:
    async def test_lists_own_sessions_and_marks_current(
        self, session: AsyncSession, client: httpx.AsyncClient, new_client: object
    ) -> None:
        user = await create_user(session)
        other = await create_user(session)
        await sign_in(session, client, user)
        second = await new_client()  # type: ignore[operator]
        await sign_in(session, second, user)
        third = await new_client()  # type: ignore[operator]
        await sign_in(session, third, other)
        response = await client.get(f"{API}/auth/sessions")
        assert response.status_code == 200
        items = response.json()["items"]
        assert len(items) == 2
        assert sum(item["current"] for item in items) == 1

    async def test_management_list_shape_pages_and_leaves_out_idle_sessions(
        self, session: AsyncSession, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        user = await create_user(session)
        for _ in range(3):
            await auth_sessions.start_session(session, settings, user)
        idle = await auth_sessions.start_session(session, settings, user)
        idle.record.last_seen_at = clock.now() - timedelta(
            seconds=settings.SESSION_IDLE_TIMEOUT_SECONDS + 1
        )
        await session.flush()
        clock.travel(timedelta(seconds=1))
        await sign_in(session, client, user)

        first = (await client.get(f"{API}/auth/sessions", params={"per_page": 3})).json()
        second = await client.get(f"{API}/auth/sessions", params={"per_page": 3, "page": 2})

        assert (first["page"], first["per_page"], first["total"]) == (1, 3, 4)
        assert len(first["items"]) == 3
        assert first["items"][0]["current"] is True  # the most recently active
        assert len(second.json()["items"]) == 1
        listed = {i["id"] for i in first["items"]} | {i["id"] for i in second.json()["items"]}
        assert str(idle.record.id) not in listed
        too_many = await client.get(f"{API}/auth/sessions", params={"per_page": 101})
        assert too_many.status_code == 422

    async def test_end_own_session(
        self, session: AsyncSession, client: httpx.AsyncClient, new_client: object
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        phone = await new_client()  # type: ignore[operator]
        await sign_in(session, phone, user)
        items = (await client.get(f"{API}/auth/sessions")).json()["items"]
        phone_session = next(item for item in items if not item["current"])
        response = await client.delete(f"{API}/auth/sessions/{phone_session['id']}")
        assert response.status_code == 204
        assert (await phone.get(f"{API}/auth/me")).status_code == 401
        assert (await client.get(f"{API}/auth/me")).status_code == 200

    async def test_another_users_session_is_not_found(
        self, session: AsyncSession, client: httpx.AsyncClient, new_client: object
    ) -> None:
        user = await create_user(session)
        other = await create_user(session)
        await sign_in(session, client, user)
        other_client = await new_client()  # type: ignore[operator]
        await sign_in(session, other_client, other)
        other_id = (await other_client.get(f"{API}/auth/sessions")).json()["items"][0]["id"]
        response = await client.delete(f"{API}/auth/sessions/{other_id}")
        assert response.status_code == 404
        assert (await other_client.get(f"{API}/auth/me")).status_code == 200


class TestChangePassword:
    async def test_needs_current_password(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        response = await client.post(
            f"{API}/auth/change-password",
            json={"current_password": "wrong-password-here", "new_password": STRONG_PASSWORD},
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_current_password"

    async def test_ends_other_sessions_and_rotates_own(
        self, session: AsyncSession, client: httpx.AsyncClient, new_client: object
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        old_token = session_cookie(client)
        laptop = await new_client()  # type: ignore[operator]
        await sign_in(session, laptop, user)
        response = await client.post(
            f"{API}/auth/change-password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": STRONG_PASSWORD},
        )
        assert response.status_code == 200
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        assert session_cookie(client) != old_token
        assert (await client.get(f"{API}/auth/me")).status_code == 200
        assert (await laptop.get(f"{API}/auth/me")).status_code == 401
        use_session_cookie(client, old_token)
        assert (await client.get(f"{API}/auth/me")).status_code == 401
        client.cookies.clear()
        assert (await login(client, user.email, DEFAULT_PASSWORD)).status_code == 401
        assert (await login(client, user.email, STRONG_PASSWORD)).status_code == 200

    async def test_common_new_password_refused(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        response = await client.post(
            f"{API}/auth/change-password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": "password123"},
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "new_password"


class TestIdleAndAbsoluteTimeouts:
    async def test_idle_session_expires(
        self, session: AsyncSession, client: httpx.AsyncClient, clock: ModuleType
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        clock.travel(timedelta(days=6))
        assert (await client.get(f"{API}/auth/me")).status_code == 200
        clock.travel(timedelta(days=6))
        assert (await client.get(f"{API}/auth/me")).status_code == 200, "activity moves it"
        clock.travel(timedelta(days=7, seconds=1))
        assert (await client.get(f"{API}/auth/me")).status_code == 401

    async def test_absolute_lifetime_ends_active_session(
        self, session: AsyncSession, client: httpx.AsyncClient, clock: ModuleType
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        for days in (6, 6, 6, 6, 5):
            clock.travel(timedelta(days=days))
            assert (await client.get(f"{API}/auth/me")).status_code == 200
        clock.travel(timedelta(days=1))
        assert (await client.get(f"{API}/auth/me")).status_code == 401


class TestAdminUsers:
    async def test_staff_only(self, session: AsyncSession, client: httpx.AsyncClient) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        response = await client.get(f"{API}/admin/users")
        assert response.status_code == 403
        assert response.json()["code"] == "staff_only"
        target = await create_user(session)
        promote = await client.post(f"{API}/admin/users/{target.id}/promote")
        assert promote.status_code == 403
        assert (await _reload(session, target)).is_staff is False

    async def test_anonymous_is_401(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(f"{API}/admin/users")).status_code == 401

    async def test_list_and_search(self, session: AsyncSession, client: httpx.AsyncClient) -> None:
        staff = await create_user(session, is_staff=True)
        needle = await create_user(session, display_name="Zebulon Needle")
        await sign_in(session, client, staff)
        response = await client.get(f"{API}/admin/users", params={"q": "zebulon"})
        assert response.status_code == 200
        body = response.json()
        assert [item["id"] for item in body["items"]] == [str(needle.id)]
        assert body["total"] == 1
        by_email = await client.get(f"{API}/admin/users", params={"q": needle.email[:12].upper()})
        assert str(needle.id) in [item["id"] for item in by_email.json()["items"]]
        page = await client.get(f"{API}/admin/users", params={"per_page": 1})
        assert page.json()["per_page"] == 1
        assert len(page.json()["items"]) == 1
        assert page.json()["total"] >= 2

    async def test_promote_and_demote(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        staff = await create_user(session, is_staff=True)
        target = await create_user(session)
        await sign_in(session, client, staff)
        promoted = await client.post(f"{API}/admin/users/{target.id}/promote")
        assert promoted.status_code == 200
        assert promoted.json()["is_staff"] is True
        demoted = await client.post(f"{API}/admin/users/{target.id}/demote")
        assert demoted.json()["is_staff"] is False
        assert (await _reload(session, target)).is_staff is False

    async def test_cannot_demote_or_deactivate_oneself(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        staff = await create_user(session, is_staff=True)
        await sign_in(session, client, staff)
        for action in ("demote", "deactivate"):
            response = await client.post(f"{API}/admin/users/{staff.id}/{action}")
            assert response.status_code == 409
        fresh = await _reload(session, staff)
        assert fresh.is_staff
        assert fresh.is_active

    async def test_deactivate_ends_sessions_and_activate_allows_login(
        self, session: AsyncSession, client: httpx.AsyncClient, new_client: object
    ) -> None:
        staff = await create_user(session, is_staff=True)
        target = await create_user(session)
        await sign_in(session, client, staff)
        victim = await new_client()  # type: ignore[operator]
        await sign_in(session, victim, target)
        response = await client.post(f"{API}/admin/users/{target.id}/deactivate")
        assert response.status_code == 200
        assert response.json()["is_active"] is False
        assert (await victim.get(f"{API}/auth/me")).status_code == 401
        assert await _session_count(session, target) == 0
        victim.cookies.clear()
        assert (await login(victim, target.email, DEFAULT_PASSWORD)).status_code == 401
        assert (await client.post(f"{API}/admin/users/{target.id}/activate")).status_code == 200
        assert (await login(victim, target.email, DEFAULT_PASSWORD)).status_code == 200

    async def test_unknown_user_is_404(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        staff = await create_user(session, is_staff=True)
        await sign_in(session, client, staff)
        response = await client.post(
            f"{API}/admin/users/00000000-0000-0000-0000-000000000000/promote"
        )
        assert response.status_code == 404


class TestUnsafeInput:
    async def test_control_characters_are_422_not_500(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        login_nul = await client.post(
            f"{API}/auth/login", json={"email": "a\x00b@example.org", "password": "whatever-1"}
        )
        assert login_nul.status_code == 422
        reset_nul = await client.post(f"{API}/auth/request-password-reset", json={"email": "a\x00"})
        assert reset_nul.status_code == 422
        register_nul = await register(client, display_name="A\x00B")
        assert register_nul.status_code == 422
        staff = await create_user(session, is_staff=True)
        await sign_in(session, client, staff)
        assert (
            await client.patch(f"{API}/auth/me", json={"display_name": "a\nb"})
        ).status_code == 422
        search = await client.get(f"{API}/admin/users", params={"q": "a\x00"})
        assert search.status_code == 422
        cookie_nul = await client.get(f"{API}/auth/validate-reset-token", params={"token": "\x00"})
        assert cookie_nul.json() == {"valid": False}
