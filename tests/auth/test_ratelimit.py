"""Brute-force limits: 429 with Retry-After, per IP and per account, shared through Redis."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

import httpx
import limits.aio.storage.memory
import pytest
import redis.asyncio as redis
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import API, login, register, unique_email
from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.factories import DEFAULT_PASSWORD, create_user, sign_in
from townsquare import ratelimit
from townsquare.main import create_app

# A database of its own: the tests empty it (a parallel suite uses another one).
REDIS_URL = os.environ.get("TOWNSQUARE_TEST_RATELIMIT_REDIS_URL") or "redis://127.0.0.1:6379/2"


async def _client(db: RolledBackDatabase, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client_for(create_app(make_settings(**overrides), database=db)):
        yield client


@pytest.fixture
async def redis_db() -> AsyncIterator[redis.Redis[bytes]]:
    pool: redis.ConnectionPool[redis.Connection] = redis.ConnectionPool.from_url(REDIS_URL)
    connection: redis.Redis[bytes] = redis.Redis(connection_pool=pool)
    await connection.flushdb()
    try:
        yield connection
    finally:
        await connection.flushdb()
        await pool.disconnect()


class MovableTime:
    """Stands in for the `time` module where the in-memory windows read the time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def limits_clock(monkeypatch: pytest.MonkeyPatch) -> MovableTime:
    """The clock of the in-memory counters and of `Retry-After`, moved by the test."""
    clock = MovableTime()
    monkeypatch.setattr(limits.aio.storage.memory, "time", clock)
    monkeypatch.setattr(ratelimit, "time", clock)
    return clock


def _assert_limited(response: httpx.Response) -> int:
    """Assert a 429 and return its Retry-After (seconds)."""
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


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

    async def test_window_moves_on(
        self, session: AsyncSession, db: RolledBackDatabase, limits_clock: MovableTime
    ) -> None:
        user = await create_user(session)
        async for client in _client(db, RATE_LIMIT_LOGIN_ACCOUNT="2/minute"):
            for _ in range(2):
                assert (await login(client, user.email, "wrong-password-guess")).status_code == 401
            assert 59 <= _assert_limited(await login(client, user.email, DEFAULT_PASSWORD)) <= 60

            limits_clock.advance(45)  # a moving window: both failures still count
            assert 14 <= _assert_limited(await login(client, user.email, DEFAULT_PASSWORD)) <= 15

            limits_clock.advance(16)
            assert (await login(client, user.email, DEFAULT_PASSWORD)).status_code == 200


class TestOtherEndpoints:
    async def test_register_per_ip(self, db: RolledBackDatabase) -> None:
        async for client in _client(db, RATE_LIMIT_REGISTER="3/hour"):
            for _ in range(3):
                assert (await register(client)).status_code == 202
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
        self, session: AsyncSession, db: RolledBackDatabase, redis_db: redis.Redis[bytes]
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


class TestRedisUnreachable:
    """The limits fail closed (ratelimit.py): limited endpoints answer 503, the rest works."""

    async def test_limited_endpoints_answer_503_and_the_rest_works(
        self, session: AsyncSession, db: RolledBackDatabase
    ) -> None:
        user = await create_user(session)
        # Nothing listens on port 1: every connection is refused at once.
        async for client in _client(db, REDIS_URL="redis://127.0.0.1:1/0"):
            refused = await login(client, user.email, DEFAULT_PASSWORD)
            registered = await register(client, email=unique_email())
            await sign_in(session, client, user)
            me = await client.get(f"{API}/auth/me")

        for response in (refused, registered):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "rate_limiter_unavailable"
            assert response.headers["retry-after"] == "5"
        assert "127.0.0.1:1" not in refused.text
        assert me.status_code == 200
        assert me.json()["email"] == user.email
