"""QUALITY bar 21 and the WebSocket part of 22: a customer whose socket was down while
50 messages (notes among them) were written follows the documented recipe (connect, wait
for `ready`, fetch `after_seq`, apply events dropping seqs already held) and ends with
every message they may see exactly once, in seq order, and never a note. In one process
(memory bus) and across two servers sharing Redis."""

from __future__ import annotations

import asyncio
import bisect
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from tests.realtime.conftest import (
    FRAME_TIMEOUT,
    REDIS_URL,
    LiveServer,
    Person,
    StartServer,
    next_frame,
    open_socket,
    organization,
    person,
)
from townsquare.auth.deps import CSRF_HEADER
from townsquare.db import Database
from townsquare.orgs.enums import MemberRole
from townsquare.realtime.redis_bus import RedisBus

pytestmark = pytest.mark.committed


class Client:
    """What a chat client keeps of one conversation: messages by seq, in seq order."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.duplicates = 0

    def apply(self, message: dict[str, Any]) -> None:
        seq = message["seq"]
        if seq in self.messages:
            self.duplicates += 1
            return
        self.messages[seq] = message
        bisect.insort(self.seqs, seq)

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0


async def fetch_after(http: httpx.AsyncClient, path: str, after_seq: int) -> list[dict[str, Any]]:
    """Every message after `after_seq`, page by page."""
    found: list[dict[str, Any]] = []
    cursor: int | None = after_seq
    while cursor is not None:
        response = await http.get(path, params={"after_seq": cursor, "limit": 20})
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(page["items"])
        cursor = page["next_cursor"]
    return found


async def apply_events_until(
    ws: ClientConnection, client: Client, conversation_id: str, wanted: set[int]
) -> list[dict[str, Any]]:
    """Apply `message.created` events until the client holds `wanted`; every frame seen."""
    frames: list[dict[str, Any]] = []
    while not wanted <= set(client.messages):
        frame = await next_frame(ws)
        frames.append(frame)
        data = frame["data"]
        if frame["type"] == "message.created" and data["conversation_id"] == conversation_id:
            client.apply(data)
    return frames


@pytest.fixture
async def http() -> AsyncIterator[Any]:
    async with AsyncExitStack() as stack:

        async def make(server: LiveServer, someone: Person) -> httpx.AsyncClient:
            headers = {
                "Cookie": f"{server.settings.SESSION_COOKIE_NAME}={someone.token}",
                CSRF_HEADER: someone.csrf_token,
            }
            return await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.api, headers=headers, timeout=FRAME_TIMEOUT)
            )

        yield make


@pytest.mark.parametrize("processes", ["one process", "two processes with Redis"])
async def test_reconnect_by_the_recipe_loses_nothing(
    committed_db: Database, start_server: StartServer, http: Any, processes: str
) -> None:
    if processes == "one process":
        agents_server = customers_server = await start_server()
    else:
        prefix = f"townsquare-test:{uuid.uuid4().hex[:10]}:"
        agents_server = await start_server(RedisBus(REDIS_URL, prefix=prefix))
        customers_server = await start_server(RedisBus(REDIS_URL, prefix=prefix))
    agent = await person(committed_db, agents_server.settings)
    customer = await person(committed_db, agents_server.settings)
    org = await organization(committed_db, {MemberRole.agent: [agent]})
    as_agent = await http(agents_server, agent)
    as_customer = await http(customers_server, customer)

    opened = await as_customer.post(
        f"/orgs/{org.slug}/conversations", json={"subject": "Help", "body": "Hello?"}
    )
    assert opened.status_code == 201, opened.text
    conversation_id = opened.json()["id"]
    messages = f"/orgs/{org.slug}/conversations/{conversation_id}/messages"

    async def agent_writes(count: int, *, notes_every: int = 0) -> None:
        for n in range(count):
            internal = notes_every > 0 and n % notes_every == notes_every - 1
            sent = await as_agent.post(messages, json={"body": f"reply {n}", "internal": internal})
            assert sent.status_code == 201, sent.text

    client = Client()
    async with AsyncExitStack() as first_visit:
        ws = await open_socket(first_visit, customers_server, customer)
        for message in await fetch_after(as_customer, messages, 0):
            client.apply(message)
        await agent_writes(5)
        await apply_events_until(ws, client, conversation_id, {1, 2, 3, 4, 5, 6})

    # The socket is down while 50 more are written, every fifth an internal note.
    await agent_writes(50, notes_every=5)

    async with AsyncExitStack() as second_visit:
        ws = await open_socket(second_visit, customers_server, customer)
        # More arrive while the client catches up, so events and the fetch overlap.
        writing = asyncio.create_task(agent_writes(20, notes_every=4))
        for message in await fetch_after(as_customer, messages, client.last_seq):
            client.apply(message)
        await writing
        everything = await fetch_after(as_customer, messages, 0)
        frames = await apply_events_until(
            ws, client, conversation_id, {m["seq"] for m in everything}
        )

    assert [client.messages[seq]["id"] for seq in client.seqs] == [m["id"] for m in everything]
    assert len(everything) == 1 + 5 + 40 + 15
    assert not any(m["internal"] for m in everything)
    assert not any(frame["data"].get("internal") for frame in frames)
