"""Sending messages: seqs, retries, who may write what, and paging by seq."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import ModuleType

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.conftest import Desk
from tests.support.test_conversations import problem
from townsquare.config import Settings
from townsquare.kit import clock as app_clock
from townsquare.support.models import Conversation


async def stored(session: AsyncSession, conversation_id: str) -> Conversation:
    found = await session.scalar(
        select(Conversation)
        .where(Conversation.id == uuid.UUID(conversation_id))
        .execution_options(populate_existing=True)
    )
    assert found is not None
    return found


class TestSend:
    async def test_seqs_follow_each_other_for_both_sides(self, desk: Desk) -> None:
        c = await desk.open()
        reply = await desk.send("agent", c["id"], "How can I help?")
        answer = await desk.send("customer", c["id"], "My password")

        assert (reply["seq"], answer["seq"]) == (2, 3)
        assert reply["sender"] == {
            "id": str(desk.users["agent"].id),
            "display_name": "Agent",
            "role": "agent",
        }
        assert reply["conversation_id"] == c["id"]
        assert reply["internal"] is False
        assert reply["attachment"] is None
        items = (await desk.messages("agent", c["id"]))["items"]
        assert [m["seq"] for m in items] == [1, 2, 3]

    async def test_a_retry_answers_200_with_the_original(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        c = await desk.open()
        body = {"body": "Once", "client_msg_id": "m-1"}
        url = desk.conv(c["id"], "/messages")

        first = await desk.clients["customer"].post(url, json=body)
        again = await desk.clients["customer"].post(url, json={**body, "body": "Changed"})
        # The same id from another sender is another message.
        agent = await desk.clients["agent"].post(url, json=body)

        assert (first.status_code, again.status_code, agent.status_code) == (201, 200, 201)
        assert again.json() == first.json()
        assert agent.json()["seq"] == 3
        assert (await stored(session, c["id"])).last_seq == 3

    async def test_a_customer_cannot_write_an_internal_note(self, desk: Desk) -> None:
        c = await desk.open()
        response = await desk.clients["customer"].post(
            desk.conv(c["id"], "/messages"), json={"body": "Psst", "internal": True}
        )
        problem(response, 403, "agents_only")
        assert (await desk.get("customer", c["id"]))["last_seq"] == 1

    async def test_nobody_writes_to_a_closed_conversation(self, desk: Desk) -> None:
        c = await desk.open()
        assert (await desk.act("agent", c["id"], "close")).status_code == 200
        for who, internal in (("customer", False), ("agent", False), ("agent", True)):
            response = await desk.clients[who].post(
                desk.conv(c["id"], "/messages"), json={"body": "Hello?", "internal": internal}
            )
            problem(response, 409, "conversation_closed")

    async def test_a_customer_message_reopens_a_resolved_conversation(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        c = await desk.open()
        await desk.act("agent", c["id"], "assign", assignee_id=str(desk.users["agent"].id))
        await desk.act("agent", c["id"], "resolve")

        sent = await desk.send("customer", c["id"], "Still broken")

        items = (await desk.messages("customer", c["id"]))["items"]
        assert [(m["type"], m["system_event"]) for m in items[-2:]] == [
            ("system", "reopened"),
            ("text", None),
        ]
        assert items[-1]["id"] == sent["id"]
        conversation = await desk.get("agent", c["id"])
        assert conversation["status"] == "assigned"
        assert conversation["resolved_at"] is None
        # An agent's message does not reopen it.
        await desk.act("agent", c["id"], "resolve")
        await desk.send("agent", c["id"], "Anything else?")
        assert (await desk.get("agent", c["id"]))["status"] == "resolved"

    async def test_the_first_public_agent_reply_is_the_first_response(
        self, desk: Desk, session: AsyncSession, clock: ModuleType, settings: Settings
    ) -> None:
        clock.freeze(app_clock.now())
        c = await desk.open()
        clock.travel(timedelta(minutes=5))
        await desk.send("agent", c["id"], "A note", internal=True)
        row = await stored(session, c["id"])
        assert row.first_response_at is None
        assert row.notice_due_at is None
        assert row.last_agent_message_at is None
        assert row.last_public_seq == 1

        clock.travel(timedelta(minutes=5))
        reply_at = app_clock.now()
        await desk.send("agent", c["id"], "The answer")
        clock.travel(timedelta(minutes=1))
        await desk.send("agent2", c["id"], "And more")

        row = await stored(session, c["id"])
        assert row.first_response_at == reply_at
        assert row.last_public_seq == 4
        assert row.last_seq == 4
        assert row.notice_due_at == reply_at + timedelta(
            seconds=settings.SUPPORT_EMAIL_NOTICE_DELAY_SECONDS
        )

    async def test_every_message_moves_the_activity_times(
        self, desk: Desk, session: AsyncSession, clock: ModuleType
    ) -> None:
        clock.freeze(app_clock.now())
        c = await desk.open()
        opened_at = (await stored(session, c["id"])).last_activity_at
        clock.travel(timedelta(minutes=1))
        await desk.send("agent", c["id"], "note", internal=True)
        row = await stored(session, c["id"])
        assert row.last_activity_at > opened_at
        assert row.last_public_activity_at == opened_at
        clock.travel(timedelta(minutes=1))
        await desk.send("customer", c["id"], "more")
        row = await stored(session, c["id"])
        assert row.last_public_activity_at == row.last_activity_at == row.last_customer_message_at

    async def test_sending_moves_the_senders_read_cursor(self, desk: Desk) -> None:
        c = await desk.open()
        await desk.send("agent", c["id"], "one")
        await desk.send("agent", c["id"], "two")
        assert (await desk.get("customer", c["id"]))["unread_count"] == 2
        await desk.send("customer", c["id"], "thanks")
        seen = await desk.get("customer", c["id"])
        assert (seen["last_read_seq"], seen["unread_count"]) == (4, 0)

    async def test_bodies_are_validated(self, desk: Desk) -> None:
        c = await desk.open()
        url = desk.conv(c["id"], "/messages")
        for body in (
            {"body": ""},
            {"body": "x" * 10_001},
            {"body": "a\x00b"},
            {"body": "ok", "client_msg_id": "has space"},
            {"body": "ok", "seq": 7},
            {"body": "ok", "type": "system"},
        ):
            response = await desk.clients["agent"].post(url, json=body)
            assert response.status_code == 422, (body, response.text)


class TestPaging:
    async def _thread(self, desk: Desk, count: int) -> str:
        c = await desk.open(body="m1")
        for n in range(2, count + 1):
            await desk.send("agent" if n % 2 else "customer", c["id"], f"m{n}")
        conversation_id: str = c["id"]
        return conversation_id

    async def test_after_seq_pages_forwards(self, desk: Desk) -> None:
        cid = await self._thread(desk, 7)
        seqs: list[int] = []
        after = 0
        while True:
            page = await desk.messages("customer", cid, after_seq=after, limit=3)
            seqs += [m["seq"] for m in page["items"]]
            if page["next_cursor"] is None:
                break
            after = page["next_cursor"]
        assert seqs == [1, 2, 3, 4, 5, 6, 7]

    async def test_before_seq_pages_backwards_in_ascending_pages(self, desk: Desk) -> None:
        cid = await self._thread(desk, 7)
        newest = await desk.messages("agent", cid, limit=3)
        assert [m["seq"] for m in newest["items"]] == [5, 6, 7]
        older = await desk.messages("agent", cid, before_seq=newest["next_cursor"], limit=3)
        assert [m["seq"] for m in older["items"]] == [2, 3, 4]
        oldest = await desk.messages("agent", cid, before_seq=older["next_cursor"], limit=3)
        assert [m["seq"] for m in oldest["items"]] == [1]
        assert oldest["next_cursor"] is None

    async def test_a_range_between_after_and_before(self, desk: Desk) -> None:
        cid = await self._thread(desk, 7)
        page = await desk.messages("agent", cid, after_seq=2, before_seq=6)
        assert [m["seq"] for m in page["items"]] == [3, 4, 5]
        assert page["next_cursor"] is None
        assert (await desk.messages("agent", cid, after_seq=7))["items"] == []

    async def test_limits_are_validated(self, desk: Desk) -> None:
        cid = await self._thread(desk, 1)
        for params in ({"limit": 0}, {"limit": 201}, {"after_seq": -1}, {"before_seq": "x"}):
            response = await desk.clients["agent"].get(desk.conv(cid, "/messages"), params=params)
            assert response.status_code == 422, params
