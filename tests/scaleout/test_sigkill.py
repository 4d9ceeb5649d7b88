"""One API process killed with SIGKILL under load: the other keeps serving, and a client
whose socket was on the killed one reconnects to the survivor and catches up with
`after_seq`, ending with every message exactly once, in order."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.realtime.conftest import conversation, organization, person
from tests.scaleout.clients import http_client, next_message, open_socket
from tests.scaleout.conftest import SCALEOUT, Cluster
from townsquare.db import Database
from townsquare.orgs.enums import MemberRole

pytestmark = SCALEOUT

WRITERS = 4
KILL_AFTER_SECONDS = 1.0
LOAD_AFTER_KILL_SECONDS = 2.0


async def _catch_up(client: httpx.AsyncClient, path: str, after_seq: int) -> list[dict[str, Any]]:
    """Every message after `after_seq`, a page at a time."""
    caught: list[dict[str, Any]] = []
    cursor: int | None = after_seq
    while cursor is not None:
        answer = await client.get(path, params={"after_seq": cursor, "limit": 100})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        caught.extend(page["items"])
        cursor = page["next_cursor"]
    return caught


async def test_a_killed_api_process_leaves_the_other_serving_and_its_sockets_catch_up(
    cluster: Cluster, shared_db: Database
) -> None:
    customer = await person(shared_db, cluster.settings, display_name="Customer")
    agent = await person(shared_db, cluster.settings, display_name="Agent")
    org = await organization(shared_db, {MemberRole.owner: [agent]})
    chat = await conversation(shared_db, org, customer)
    path = f"/orgs/{org.slug}/conversations/{chat.id}/messages"
    acknowledged: dict[int, str] = {}
    after_kill: list[int] = []
    killed = asyncio.Event()
    stop = asyncio.Event()
    try:
        async with AsyncExitStack() as stack:
            senders = [await http_client(stack, cluster, api, customer) for api in cluster.apis]
            agent_on_b = await http_client(stack, cluster, cluster.b, agent)
            ws: ClientConnection = await open_socket(stack, cluster, cluster.a, agent)

            async def write(n: int) -> None:
                sent = 0
                while not stop.is_set():
                    body = {"body": f"w{n}.{sent}", "client_msg_id": f"w{n}.{sent}"}
                    # Behind a load balancer: A until it is gone, then B; a send cut off by
                    # the kill is retried on B with the same client_msg_id.
                    try:
                        answer = await senders[sent % 2 if not killed.is_set() else 1].post(
                            path, json=body
                        )
                    except httpx.TransportError:
                        assert killed.is_set()
                        answer = await senders[1].post(path, json=body)
                    assert answer.status_code in (200, 201), answer.text
                    acknowledged[answer.json()["seq"]] = body["body"]
                    if killed.is_set():
                        after_kill.append(answer.status_code)
                    sent += 1

            async def read_until_cut() -> list[dict[str, Any]]:
                live: list[dict[str, Any]] = []
                try:
                    while True:
                        live.append(await next_message(ws, timeout=30))
                except ConnectionClosed:
                    return live

            reading = asyncio.create_task(read_until_cut())
            writers = [asyncio.create_task(write(n)) for n in range(WRITERS)]
            await asyncio.sleep(KILL_AFTER_SECONDS)
            killed.set()
            cluster.a.kill()
            killed_at = time.perf_counter()
            before_cut = await asyncio.wait_for(reading, 10)
            # The documented recipe: reconnect (to the survivor), then catch up from the
            # last seq seen, then take live frames, passing over what was caught up.
            again = await open_socket(stack, cluster, cluster.b, agent)
            last_seen = max((m["seq"] for m in before_cut), default=0)
            caught = await _catch_up(agent_on_b, path, last_seen)
            reconnected_in = time.perf_counter() - killed_at
            await asyncio.sleep(LOAD_AFTER_KILL_SECONDS)
            stop.set()
            await asyncio.gather(*writers)
            newest = max(acknowledged)
            live_after: list[dict[str, Any]] = []
            seen_newest = max((m["seq"] for m in caught), default=last_seen)
            while seen_newest < newest:
                message = await next_message(again)
                live_after.append(message)
                seen_newest = max(seen_newest, message["seq"])
        cluster.b.wait_ready()
        assert cluster.b.alive()
        for worker in cluster.workers:
            assert worker.alive()
    finally:
        cluster.restart(cluster.a)

    merged: dict[int, str] = {}
    for message in [*before_cut, *caught]:
        assert message["seq"] not in merged
        merged[message["seq"]] = message["body"]
    for message in live_after:
        merged.setdefault(message["seq"], message["body"])
    print(
        f"\nA killed under load: {len(after_kill)} writes served by B afterwards, socket moved "
        f"to B and caught up {len(caught)} messages {reconnected_in * 1000:.0f} ms after the "
        f"kill; {len(merged)} of {len(acknowledged)} acknowledged messages seen"
    )
    assert after_kill
    assert merged == acknowledged
    assert sorted(m["seq"] for m in caught) == [m["seq"] for m in caught]
