"""Read cursors: one per person, forward only, and unread counts that follow them."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.conftest import Desk
from tests.support.test_messages import stored
from townsquare.support.models import ChatParticipant


async def read(desk: Desk, who: str, cid: str, seq: int) -> dict[str, object]:
    response = await desk.clients[who].post(desk.conv(cid, "/read"), json={"seq": seq})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


class TestReadCursors:
    async def test_each_person_has_their_own(self, desk: Desk) -> None:
        c = await desk.open()
        for n in range(3):
            await desk.send("customer", c["id"], f"more {n}")

        assert (await read(desk, "agent", c["id"], 2))["unread_count"] == 2
        assert (await desk.get("agent", c["id"]))["last_read_seq"] == 2
        # Another agent's cursor has not moved.
        other = await desk.get("agent2", c["id"])
        assert (other["last_read_seq"], other["unread_count"]) == (0, 4)
        listed = (await desk.clients["agent"].get(desk.url("/conversations"))).json()
        assert (listed["items"][0]["last_read_seq"], listed["items"][0]["unread_count"]) == (2, 2)

    async def test_it_only_moves_forward(self, desk: Desk) -> None:
        c = await desk.open()
        await desk.send("customer", c["id"], "two")
        await desk.send("customer", c["id"], "three")
        await read(desk, "agent", c["id"], 3)

        back = await read(desk, "agent", c["id"], 1)

        assert (back["last_read_seq"], back["unread_count"]) == (3, 0)

    async def test_a_seq_beyond_the_end_is_lowered_to_the_newest(self, desk: Desk) -> None:
        c = await desk.open()
        assert (await read(desk, "agent", c["id"], 10_000))["last_read_seq"] == 1
        bad = await desk.clients["agent"].post(desk.conv(c["id"], "/read"), json={"seq": -1})
        assert bad.status_code == 422

    async def test_an_agents_first_read_makes_them_a_participant(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        c = await desk.open()
        await read(desk, "agent2", c["id"], 1)
        rows = (
            await session.scalars(
                select(ChatParticipant).where(ChatParticipant.conversation_id == uuid.UUID(c["id"]))
            )
        ).all()
        assert sorted((r.role.value, r.last_read_seq) for r in rows) == [
            ("agent", 1),
            ("customer", 1),
        ]

    async def test_own_messages_never_count_as_unread(self, desk: Desk) -> None:
        c = await desk.open()
        await desk.send("agent", c["id"], "one")
        await desk.send("customer", c["id"], "two")
        # The agent's cursor moved to their own message (2); the customer's reply is new.
        seen = await desk.get("agent", c["id"])
        assert (seen["last_read_seq"], seen["unread_count"]) == (2, 1)

    async def test_reading_everything_cancels_the_email_notice(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        c = await desk.open()
        await desk.send("agent", c["id"], "one")
        await desk.send("agent", c["id"], "two")
        assert (await stored(session, c["id"])).notice_due_at is not None
        await read(desk, "customer", c["id"], 2)
        assert (await stored(session, c["id"])).notice_due_at is not None
        await read(desk, "customer", c["id"], 3)
        assert (await stored(session, c["id"])).notice_due_at is None

    async def test_another_customers_conversation_is_not_found(self, desk: Desk) -> None:
        c = await desk.open("customer2")
        response = await desk.clients["customer"].post(desk.conv(c["id"], "/read"), json={"seq": 1})
        assert response.status_code == 404
