"""Every connection of the cluster's database killed again and again (pg_terminate_backend,
on this database only) while clients write through both API processes: requests fail only
during the outage, with 503 problem+json; `/readyz` says so and recovers; both API
processes and the workers carry on without a restart; every acknowledged write is kept."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.realtime.conftest import conversation, organization, person
from tests.scaleout.clients import http_client
from tests.scaleout.conftest import SCALEOUT, Cluster
from townsquare.db import Database
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail
from townsquare.orgs.enums import MemberRole
from townsquare.support.models import ChatMessage

pytestmark = SCALEOUT

WRITERS = 4
OUTAGE_SECONDS = 3.0
# A request that started just before the outage ended may still meet a killed connection.
GRACE_SECONDS = 1.0


@dataclass
class Tally:
    acknowledged: list[uuid.UUID] = field(default_factory=list)
    refused: list[tuple[float, float]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    readiness: list[tuple[float, str, int]] = field(default_factory=list)


async def _kill_backends(database_url: str, until: float) -> int:
    """Terminate every backend of the cluster's database until `until`; how many."""
    target = make_url(database_url)
    engine = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    killed = 0
    try:
        async with engine.connect() as admin:
            while time.perf_counter() < until:
                rows = await admin.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": target.database},
                )
                killed += sum(1 for (done,) in rows if done)
                await asyncio.sleep(0.01)
    finally:
        await engine.dispose()
    return killed


async def test_killed_database_connections_fail_requests_only_during_the_outage(
    cluster: Cluster, shared_db: Database
) -> None:
    customer = await person(shared_db, cluster.settings, display_name="Customer")
    agent = await person(shared_db, cluster.settings, display_name="Agent")
    org = await organization(shared_db, {MemberRole.owner: [agent]})
    chats = [await conversation(shared_db, org, customer) for _ in range(2)]
    tally = Tally()
    stop = asyncio.Event()
    origin = time.perf_counter()
    async with AsyncExitStack() as stack:
        clients = [await http_client(stack, cluster, api, customer) for api in cluster.apis]
        probes = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=api.url, timeout=10))
            for api in cluster.apis
        ]

        async def write(n: int) -> None:
            path = f"/orgs/{org.slug}/conversations/{chats[n % 2].id}/messages"
            sent = 0
            while not stop.is_set():
                started = time.perf_counter() - origin
                try:
                    answer = await clients[sent % 2].post(path, json={"body": f"w{n}.{sent}"})
                except httpx.HTTPError as exc:
                    tally.unexpected.append(f"{type(exc).__name__}: {exc}")
                    continue
                finally:
                    sent += 1
                if answer.status_code == 201:
                    tally.acknowledged.append(uuid.UUID(answer.json()["id"]))
                elif answer.status_code == 503 and answer.headers["content-type"].startswith(
                    "application/problem+json"
                ):
                    assert answer.json()["code"] == "database_unavailable"
                    tally.refused.append((started, time.perf_counter() - origin))
                else:
                    tally.unexpected.append(f"{answer.status_code} {answer.text[:200]}")

        async def probe() -> None:
            while not stop.is_set():
                for name, client in zip(("a", "b"), probes, strict=True):
                    answer = await client.get("/readyz")
                    tally.readiness.append((time.perf_counter() - origin, name, answer.status_code))
                await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(write(n)) for n in range(WRITERS)]
        tasks.append(asyncio.create_task(probe()))
        await asyncio.sleep(1.0)
        outage_start = time.perf_counter() - origin
        killed = await _kill_backends(cluster.database_url, time.perf_counter() + OUTAGE_SECONDS)
        outage_end = time.perf_counter() - origin
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.gather(*tasks)

        # The workers came back too: an email queued now is delivered.
        await shared_db.engine.dispose()
        address = f"after-outage.{org.slug}@example.com"
        owner = await http_client(stack, cluster, cluster.b, agent)
        invited = await owner.post(f"/orgs/{org.slug}/invitations", json={"email": address})
        assert invited.status_code == 201, invited.text
        deadline = time.perf_counter() + 30
        while True:
            async with shared_db.session(write=False) as session:
                status = await session.scalar(
                    select(OutboxEmail.status).where(OutboxEmail.to_address == address)
                )
            if status == EmailStatus.sent:
                break
            assert time.perf_counter() < deadline, f"the email after the outage is {status}"
            await asyncio.sleep(0.2)

    async with shared_db.session(write=False) as session:
        stored = set(
            (
                await session.scalars(
                    select(ChatMessage.id).where(ChatMessage.id.in_(tally.acknowledged))
                )
            ).all()
        )
    after = [(at, name, code) for at, name, code in tally.readiness if at > outage_end + 1]
    during = Counter(
        (name, code) for at, name, code in tally.readiness if outage_start <= at <= outage_end
    )
    cluster.check_alive()
    print(
        f"\noutage of {outage_end - outage_start:.1f} s, {killed} backends killed: "
        f"{len(tally.acknowledged)} writes acknowledged (all stored: "
        f"{len(stored) == len(tally.acknowledged)}), {len(tally.refused)} answered 503, "
        f"readyz during the outage {dict(during)}"
    )
    assert tally.unexpected == []
    assert stored == set(tally.acknowledged)
    assert tally.refused, "no request met the outage"
    # In flight at some moment of the outage (or just after, on a connection killed in it).
    outside = [
        (round(started, 2), round(finished, 2))
        for started, finished in tally.refused
        if finished < outage_start or started > outage_end + GRACE_SECONDS
    ]
    assert outside == [], f"503 outside the outage {outage_start:.2f}..{outage_end:.2f}"
    assert during[("a", 503)] > 0
    assert during[("b", 503)] > 0
    assert [code for _, _, code in after if code != 200] == []
    assert {name for _, name, _ in after} == {"a", "b"}
