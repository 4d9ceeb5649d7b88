"""Brute-force limits: 429 with Retry-After, per IP and per account, shared through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as redis
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import API, login, register, unique_email
from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.factories import DEFAULT_PASSWORD, create_user, sign_in
from townsquare.main import create_app

REDIS_URL = "redis://127.0.0.1:6379/2"


async def _client(db: RolledBackDatabase, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client_for(create_app(make_settings(**overrides), database=db)):
        yield client


@pytest.fixture
async def redis_db() -> AsyncIterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS_URL)
    await connection.flushdb()
    try:
        yield connection
    finally:
        await connection.flushdb()
        await connection.aclose()


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


class TestLoginLimits:
    async def test_failures_per_account_give_429_even_with_the_right_password(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        for _ in range(5):
            assert (await login(client, user.email, "wrong-password-guess")).status_code == 401
        _assert_limited(await login(client, user.email, "wrong-password-guess"))
        _assert_limited(await login(client, user.email.upper(), DEFAULT_PASSWORD))

    async def test_failures_per_ip_across_accounts(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        for _ in range(10):
            assert (await login(client, unique_email(), "wrong-password-guess")).status_code == 401
        _assert_limited(await login(client, unique_email(), "wrong-password-guess"))

    async def test_limits_are_settings(self, session: AsyncSession, db: RolledBackDatabase) -> None:
        user = await create_user(session)
        async for client in _client(db, RATE_LIMIT_LOGIN_ACCOUNT="2/minute"):
            for _ in range(2):
                assert (await login(client, user.email, "wrong-password-guess")).status_code == 401
            _assert_limited(await login(client, user.email, "wrong-password-guess"))
        async for client in _client(db, RATE_LIMIT_ENABLED=False):
            for _ in range(12):
                assert (await login(client, user.email, "wrong-password-guess")).status_code == 401
            assert (await login(client, user.email, DEFAULT_PASSWORD)).status_code == 200

    async def test_window_moves_on(self, session: AsyncSession, db: RolledBackDatabase) -> None:
        user = await create_user(session)
        async for client in _client(db, RATE_LIMIT_LOGIN_ACCOUNT="2/second"):
            for _ in range(2):
                await login(client, user.email, "wrong-password-guess")
            _assert_limited(await login(client, user.email, DEFAULT_PASSWORD))
            await asyncio.sleep(1.1)
            assert (await login(client, user.email, DEFAULT_PASSWORD)).status_code == 200


class TestOtherEndpoints:
    async def test_register_per_ip(self, db: RolledBackDatabase) -> None:
        async for client in _client(db, RATE_LIMIT_REGISTER="3/hour"):
            for _ in range(3):
                assert (await register(client)).status_code == 201
            _assert_limited(await register(client))

    async def test_password_reset_requests_per_account_for_known_and_unknown(
        self, session: AsyncSession, db: RolledBackDatabase
    ) -> None:
        user = await create_user(session)
        async for client in _client(db, RATE_LIMIT_PASSWORD_RESET="100/hour"):
            for email in (user.email, unique_email()):
                for _ in range(3):
                    response = await client.post(
                        f"{API}/auth/request-password-reset", json={"email": email}
                    )
                    assert response.status_code == 202
                _assert_limited(
                    await client.post(f"{API}/auth/request-password-reset", json={"email": email})
                )

    async def test_password_reset_requests_per_ip(self, client: httpx.AsyncClient) -> None:
        for _ in range(5):
            response = await client.post(
                f"{API}/auth/request-password-reset", json={"email": unique_email()}
            )
            assert response.status_code == 202
        _assert_limited(
            await client.post(f"{API}/auth/request-password-reset", json={"email": unique_email()})
        )

    async def test_change_password_per_account(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        body = {"current_password": "wrong-password-guess", "new_password": "a-new-Fine-pass-1"}
        for _ in range(5):
            response = await client.post(f"{API}/auth/change-password", json=body)
            assert response.status_code == 400
        _assert_limited(await client.post(f"{API}/auth/change-password", json=body))

    async def test_token_guessing_per_ip(self, client: httpx.AsyncClient) -> None:
        for _ in range(10):
            response = await client.post(f"{API}/auth/verify-email", json={"token": "guess"})
            assert response.status_code == 400
        _assert_limited(await client.post(f"{API}/auth/verify-email", json={"token": "guess"}))
        _assert_limited(
            await client.get(f"{API}/auth/validate-reset-token", params={"token": "guess"})
        )


class TestSharedThroughRedis:
    async def test_two_app_instances_share_counts(
        self, session: AsyncSession, db: RolledBackDatabase, redis_db: redis.Redis
    ) -> None:
        user = await create_user(session)
        first = create_app(make_settings(REDIS_URL=REDIS_URL), database=db)
        second = create_app(make_settings(REDIS_URL=REDIS_URL), database=db)
        async for client_a in _client_for(first):
            async for client_b in _client_for(second):
                for client in (client_a, client_b, client_a, client_b, client_a):
                    response = await login(client, user.email, "wrong-password-guess")
                    assert response.status_code == 401
                _assert_limited(await login(client_b, user.email, DEFAULT_PASSWORD))
                _assert_limited(await login(client_a, user.email, DEFAULT_PASSWORD))
        keys = await redis_db.keys("townsquare:ratelimit*")
        assert keys, "the counters live in Redis"
