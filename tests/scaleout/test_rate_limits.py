"""Login rate limits are counted in Redis: attempts on both API processes add up."""

from __future__ import annotations

from contextlib import AsyncExitStack

from tests.factories import create_user
from tests.scaleout.clients import http_client
from tests.scaleout.conftest import SCALEOUT, Cluster
from townsquare.db import Database, transaction

pytestmark = SCALEOUT


async def test_login_attempts_from_one_address_are_limited_across_both_processes(
    cluster: Cluster,
) -> None:
    limit = 10  # RATE_LIMIT_LOGIN: 10/minute
    statuses: list[int] = []
    async with AsyncExitStack() as stack:
        clients = [await http_client(stack, cluster, api) for api in cluster.apis]
        for n in range(limit + 4):
            answer = await clients[n % 2].post(
                "/auth/login",
                json={"email": f"nobody{n}@example.com", "password": "wrong password"},
                headers={"X-Forwarded-For": "203.0.113.7"},
            )
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert answer.json()["code"] == "rate_limited"
    print(f"\nlogin attempts from one address, alternating A and B: {statuses}")
    assert statuses == [401] * limit + [429] * 4


async def test_login_attempts_on_one_account_are_limited_across_both_processes(
    cluster: Cluster, shared_db: Database
) -> None:
    limit = 5  # RATE_LIMIT_LOGIN_ACCOUNT: 5/minute
    async with transaction(shared_db) as session:
        user = await create_user(session)
    statuses: list[int] = []
    async with AsyncExitStack() as stack:
        clients = [await http_client(stack, cluster, api) for api in cluster.apis]
        for n in range(limit + 3):
            answer = await clients[n % 2].post(
                "/auth/login",
                json={"email": user.email, "password": "wrong password"},
                headers={"X-Forwarded-For": f"198.51.100.{n + 1}"},
            )
            statuses.append(answer.status_code)
    print(f"\nlogin attempts on one account from 8 addresses, alternating A and B: {statuses}")
    assert statuses == [401] * limit + [429] * 3
