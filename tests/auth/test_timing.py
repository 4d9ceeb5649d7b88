"""No enumeration by the clock: known and unknown emails take about the same time."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import API, unique_email
from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.factories import create_user
from townsquare.main import create_app

ROUNDS = 7


async def _medians(
    first: Callable[[], Awaitable[httpx.Response]],
    second: Callable[[], Awaitable[httpx.Response]],
    status: int,
) -> tuple[float, float]:
    """Median durations of the two calls, interleaved so that machine noise hits both."""
    durations: tuple[list[float], list[float]] = ([], [])
    for _ in range(ROUNDS):
        for call, bucket in ((first, durations[0]), (second, durations[1])):
            started = time.perf_counter()
            response = await call()
            bucket.append(time.perf_counter() - started)
            assert response.status_code == status
    return statistics.median(durations[0]), statistics.median(durations[1])


def _login(client: httpx.AsyncClient, email: str) -> Callable[[], Awaitable[httpx.Response]]:
    body = {"email": email, "password": "wrong-password-guess"}
    return lambda: client.post(f"{API}/auth/login", json=body)


def _reset(client: httpx.AsyncClient, email: str) -> Callable[[], Awaitable[httpx.Response]]:
    return lambda: client.post(f"{API}/auth/request-password-reset", json={"email": email})


class TestTiming:
    async def test_login_unknown_email_vs_wrong_password(
        self, session: AsyncSession, db: RolledBackDatabase
    ) -> None:
        user = await create_user(session)
        app = create_app(make_settings(RATE_LIMIT_ENABLED=False), database=db)
        async for client in _client_for(app):
            attempt = partial(_login, client)
            await attempt(unique_email())()  # the throwaway hash is made once
            known, unknown = await _medians(attempt(user.email), attempt(unique_email()), 401)
        print(
            f"login median: wrong password {known * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms"
        )
        assert 0.5 < known / unknown < 2.0

    async def test_password_reset_known_vs_unknown(
        self, session: AsyncSession, db: RolledBackDatabase
    ) -> None:
        user = await create_user(session)
        app = create_app(make_settings(RATE_LIMIT_ENABLED=False), database=db)
        async for client in _client_for(app):
            attempt = partial(_reset, client)
            await attempt(unique_email())()
            known, unknown = await _medians(attempt(user.email), attempt(unique_email()), 202)
        print(f"reset median: known {known * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms")
        assert 0.5 < known / unknown < 2.0
