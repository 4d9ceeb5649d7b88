"""Email verification and password reset: single-use, short-lived, hashed tokens."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import (
    API,
    STRONG_PASSWORD,
    link_token,
    login,
    outbox_bodies,
    register,
    register_and_login,
    unique_email,
)
from tests.factories import DEFAULT_PASSWORD, create_user, sign_in
from townsquare.auth.models import User, UserSession


async def _user(session: AsyncSession, email: str) -> User:
    user = await session.scalar(
        select(User).where(User.email == email).execution_options(populate_existing=True)
    )
    assert user is not None
    return user


async def _request_reset(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(f"{API}/auth/request-password-reset", json={"email": email})


class TestVerifyEmail:
    async def test_link_from_the_registration_email_verifies(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        email = unique_email()
        assert (await register(client, email=email)).status_code == 202
        [body] = await outbox_bodies(session, email)
        token = link_token(body, "verify-email")
        response = await client.post(f"{API}/auth/verify-email", json={"token": token})
        assert response.status_code == 200
        assert response.json()["email_verified"] is True
        assert (await _user(session, email)).email_verified_at is not None

    async def test_token_is_single_use(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        email = unique_email()
        await register(client, email=email)
        token = link_token((await outbox_bodies(session, email))[0], "verify-email")
        assert (await client.post(f"{API}/auth/verify-email", json={"token": token})).is_success
        again = await client.post(f"{API}/auth/verify-email", json={"token": token})
        assert again.status_code == 400
        assert again.json()["code"] == "invalid_token"

    async def test_token_expires(
        self, session: AsyncSession, client: httpx.AsyncClient, clock: ModuleType
    ) -> None:
        email = unique_email()
        await register(client, email=email)
        token = link_token((await outbox_bodies(session, email))[0], "verify-email")
        clock.travel(timedelta(hours=48, seconds=1))
        response = await client.post(f"{API}/auth/verify-email", json={"token": token})
        assert response.status_code == 400
        assert (await _user(session, email)).email_verified_at is None

    async def test_resend_invalidates_the_older_link(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        email = unique_email()
        await register_and_login(client, email=email)
        resent = await client.post(f"{API}/auth/resend-verification")
        assert resent.status_code == 202
        first, second = await outbox_bodies(session, email)
        old, new = link_token(first, "verify-email"), link_token(second, "verify-email")
        assert (
            await client.post(f"{API}/auth/verify-email", json={"token": old})
        ).status_code == 400
        assert (
            await client.post(f"{API}/auth/verify-email", json={"token": new})
        ).status_code == 200

    async def test_resend_when_verified_is_409(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session, verified=True)
        await sign_in(session, client, user)
        response = await client.post(f"{API}/auth/resend-verification")
        assert response.status_code == 409
        assert response.json()["code"] == "already_verified"

    async def test_resend_needs_sign_in(self, client: httpx.AsyncClient) -> None:
        assert (await client.post(f"{API}/auth/resend-verification")).status_code == 401


class TestRequestPasswordReset:
    async def test_same_answer_for_known_and_unknown_email(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        known = await _request_reset(client, user.email)
        unknown = await _request_reset(client, unique_email())
        assert known.status_code == unknown.status_code == 202
        assert known.json() == unknown.json()
        assert len(await outbox_bodies(session, user.email)) == 1

    async def test_new_request_invalidates_older_links(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await _request_reset(client, user.email)
        await _request_reset(client, user.email.upper())
        first, second = await outbox_bodies(session, user.email)
        old = link_token(first, "reset-password")
        new = link_token(second, "reset-password")
        validate = f"{API}/auth/validate-reset-token"
        assert (await client.get(validate, params={"token": old})).json() == {"valid": False}
        assert (await client.get(validate, params={"token": new})).json() == {"valid": True}


class TestResetPassword:
    async def test_reset_ends_every_session_and_token_dies(
        self, session: AsyncSession, client: httpx.AsyncClient, new_client: object
    ) -> None:
        user = await create_user(session, verified=False)
        await sign_in(session, client, user)
        anonymous = await new_client()  # type: ignore[operator]
        await _request_reset(anonymous, user.email)
        token = link_token((await outbox_bodies(session, user.email))[-1], "reset-password")
        response = await anonymous.post(
            f"{API}/auth/reset-password", json={"token": token, "new_password": STRONG_PASSWORD}
        )
        assert response.status_code == 200
        assert (await client.get(f"{API}/auth/me")).status_code == 401
        count = await session.scalar(
            select(func.count()).select_from(UserSession).where(UserSession.user_id == user.id)
        )
        assert count == 0
        again = await anonymous.post(
            f"{API}/auth/reset-password",
            json={"token": token, "new_password": "another-Fine-pass-9"},
        )
        assert again.status_code == 400
        assert (
            await anonymous.get(f"{API}/auth/validate-reset-token", params={"token": token})
        ).json() == {"valid": False}
        assert (await login(anonymous, user.email, DEFAULT_PASSWORD)).status_code == 401
        assert (await login(anonymous, user.email, STRONG_PASSWORD)).status_code == 200
        assert (await _user(session, user.email)).email_verified_at is not None

    async def test_token_lives_one_hour(
        self, session: AsyncSession, client: httpx.AsyncClient, clock: ModuleType
    ) -> None:
        user = await create_user(session)
        await _request_reset(client, user.email)
        token = link_token((await outbox_bodies(session, user.email))[-1], "reset-password")
        clock.travel(timedelta(minutes=59))
        validate = f"{API}/auth/validate-reset-token"
        assert (await client.get(validate, params={"token": token})).json() == {"valid": True}
        clock.travel(timedelta(minutes=1, seconds=1))
        assert (await client.get(validate, params={"token": token})).json() == {"valid": False}
        response = await client.post(
            f"{API}/auth/reset-password", json={"token": token, "new_password": STRONG_PASSWORD}
        )
        assert response.status_code == 400

    async def test_common_password_refused_and_token_kept(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await _request_reset(client, user.email)
        token = link_token((await outbox_bodies(session, user.email))[-1], "reset-password")
        response = await client.post(
            f"{API}/auth/reset-password", json={"token": token, "new_password": "qwertyuiop"}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "new_password"
        validate = f"{API}/auth/validate-reset-token"
        assert (await client.get(validate, params={"token": token})).json() == {"valid": True}

    async def test_password_equal_to_email_refused(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session, email=unique_email("long-address"))
        await _request_reset(client, user.email)
        token = link_token((await outbox_bodies(session, user.email))[-1], "reset-password")
        response = await client.post(
            f"{API}/auth/reset-password", json={"token": token, "new_password": user.email}
        )
        assert response.status_code == 422

    async def test_change_password_kills_outstanding_reset_links(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await _request_reset(client, user.email)
        token = link_token((await outbox_bodies(session, user.email))[-1], "reset-password")
        await sign_in(session, client, user)
        changed = await client.post(
            f"{API}/auth/change-password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": STRONG_PASSWORD},
        )
        assert changed.status_code == 200
        validate = f"{API}/auth/validate-reset-token"
        assert (await client.get(validate, params={"token": token})).json() == {"valid": False}
