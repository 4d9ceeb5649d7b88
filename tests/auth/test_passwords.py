"""Password hashing: argon2id with OWASP parameters, off the event loop, rehashed on login."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
from argon2 import PasswordHasher, Type
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import login, register, unique_email
from tests.conftest import _client_for, make_settings
from tests.factories import DEFAULT_PASSWORD, create_user
from townsquare.auth import passwords
from townsquare.auth.models import User
from townsquare.db import Database, transaction
from townsquare.main import create_app


def _parameters(password_hash: str) -> dict[str, int]:
    match = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", password_hash)
    assert match, password_hash
    m, t, p = (int(g) for g in match.groups())
    return {"m": m, "t": t, "p": p}


class TestHash:
    async def test_registration_stores_argon2id_with_owasp_parameters(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        email = unique_email()
        assert (await register(client, email=email)).status_code == 202
        stored = await session.scalar(select(User.password_hash).where(User.email == email))
        assert stored is not None
        assert stored.startswith("$argon2id$")
        params = _parameters(stored)
        assert params["t"] >= 2
        assert params["m"] >= 19 * 1024
        assert params["p"] == 1

    async def test_login_rehashes_when_parameters_change(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)
        user = await create_user(session)
        user.password_hash = weak.hash(DEFAULT_PASSWORD)
        await session.flush()
        assert (await login(client, user.email, DEFAULT_PASSWORD)).status_code == 200
        stored = await session.scalar(
            select(User.password_hash)
            .where(User.id == user.id)
            .execution_options(populate_existing=True)
        )
        assert stored is not None
        assert _parameters(stored) == {"m": 19 * 1024, "t": 2, "p": 1}
        client.cookies.clear()
        assert (await login(client, user.email, DEFAULT_PASSWORD)).status_code == 200

    def test_common_list_is_loaded(self) -> None:
        common = passwords.common_passwords()
        assert len(common) > 1000
        assert passwords.is_common_password("Password123")
        assert not passwords.is_common_password("a-long-Unusual-passphrase-42")


class TestEventLoop:
    async def test_health_stays_fast_while_logins_hash(self, committed_db: Database) -> None:
        async with transaction(committed_db) as session:
            users = [await create_user(session) for _ in range(6)]
        settings = make_settings(RATE_LIMIT_ENABLED=False)
        async for client in _client_for(create_app(settings, database=committed_db)):
            started = time.perf_counter()
            logins = asyncio.gather(
                *(login(client, user.email, DEFAULT_PASSWORD) for user in users),
                *(login(client, unique_email(), DEFAULT_PASSWORD) for _ in range(6)),
            )
            health_latencies: list[float] = []
            logins_task = asyncio.ensure_future(logins)
            while not logins_task.done():
                before = time.perf_counter()
                assert (await client.get("/healthz")).status_code == 200
                health_latencies.append(time.perf_counter() - before)
                await asyncio.sleep(0.005)
            responses = await logins_task
            logins_took = time.perf_counter() - started
        assert [r.status_code for r in responses] == [200] * 6 + [401] * 6
        print(
            f"12 logins took {logins_took * 1000:.0f} ms; {len(health_latencies)} health checks, "
            f"slowest {max(health_latencies) * 1000:.1f} ms"
        )
        assert len(health_latencies) >= 3
        assert max(health_latencies) < logins_took / 3
