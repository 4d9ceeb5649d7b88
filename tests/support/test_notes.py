"""Internal notes reach no customer by any path (QUALITY bar 22): message lists, the
conversation, lists and unread counts, `/me/conversations`, read cursors, live events.
Agents see every seq with no gap; the customer sees the same order with the notes'
seqs missing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import ModuleType
from typing import Any

from tests.support.conftest import API, Desk, Listener
from townsquare.kit import clock as app_clock
from townsquare.realtime.events import org_agents_channel, user_channel

Listen = Callable[[str], Awaitable[Listener]]
NOTE = "Customer is on the legacy plan; do not offer a refund"


def no_note(value: Any) -> None:
    """Nothing in `value` (a response or event body) carries the note's text."""
    assert NOTE not in repr(value)


async def thread_with_notes(desk: Desk) -> str:
    """seq 1 customer, 2 note, 3 agent reply, 4 note: the customer can see 1 and 3."""
    c = await desk.open(body="My invoice is wrong")
    await desk.send("agent", c["id"], NOTE, internal=True)
    await desk.send("agent", c["id"], "We are looking into it")
    await desk.send("agent2", c["id"], NOTE, internal=True)
    conversation_id: str = c["id"]
    return conversation_id


class TestRest:
    async def test_message_lists(self, desk: Desk) -> None:
        cid = await thread_with_notes(desk)

        agent = await desk.messages("agent", cid)
        customer = await desk.messages("customer", cid)

        assert [(m["seq"], m["internal"]) for m in agent["items"]] == [
            (1, False),
            (2, True),
            (3, False),
            (4, True),
        ]
        assert [m["seq"] for m in customer["items"]] == [1, 3]
        no_note(customer)
        for params in ({"after_seq": 1}, {"before_seq": 5}, {"after_seq": 0, "limit": 1}):
            no_note(await desk.messages("customer", cid, **params))
        # Paging never stops early at a hidden seq.
        first = await desk.messages("customer", cid, after_seq=0, limit=1)
        rest = await desk.messages("customer", cid, after_seq=first["next_cursor"], limit=1)
        assert [m["seq"] for m in first["items"] + rest["items"]] == [1, 3]

    async def test_the_conversation_and_its_unread_count(
        self, desk: Desk, clock: ModuleType
    ) -> None:
        clock.freeze(app_clock.now())
        c = await desk.open()
        clock.travel(timedelta(minutes=1))
        await desk.send("agent", c["id"], "Reply")
        reply_at = (await desk.get("agent", c["id"]))["last_activity_at"]
        clock.travel(timedelta(minutes=1))
        await desk.send("agent", c["id"], NOTE, internal=True)

        seen = await desk.get("customer", c["id"])
        agent_view = await desk.get("agent2", c["id"])

        assert (seen["last_seq"], seen["unread_count"]) == (2, 1)
        assert seen["last_activity_at"] == reply_at
        assert (agent_view["last_seq"], agent_view["unread_count"]) == (3, 3)
        assert agent_view["last_activity_at"] > reply_at

    async def test_lists_and_me_conversations(self, desk: Desk, clock: ModuleType) -> None:
        first = await thread_with_notes(desk)
        clock.travel(timedelta(seconds=5))
        second = (await desk.open(subject="Second"))["id"]
        clock.travel(timedelta(seconds=5))
        # A note on the older conversation must not move it up in the customer's lists.
        await desk.send("agent", first, NOTE, internal=True)

        for url in (desk.url("/conversations"), f"{API}/me/conversations"):
            page = (await desk.clients["customer"].get(url)).json()
            no_note(page)
            assert [i["id"] for i in page["items"]] == [second, first]
            item = page["items"][1]
            assert (item["last_seq"], item["unread_count"]) == (3, 1)
        agents = (await desk.clients["agent2"].get(desk.url("/conversations"))).json()
        assert [i["id"] for i in agents["items"]] == [first, second]
        assert agents["items"][0]["last_seq"] == 5

    async def test_a_read_cursor_stops_at_what_the_customer_can_see(self, desk: Desk) -> None:
        cid = await thread_with_notes(desk)

        response = await desk.clients["customer"].post(desk.conv(cid, "/read"), json={"seq": 4})

        assert response.status_code == 200
        assert response.json()["last_read_seq"] == 3
        assert response.json()["unread_count"] == 0

    async def test_an_agent_who_opened_a_conversation_is_its_customer(self, desk: Desk) -> None:
        c = await desk.open("agent2", body="I need help too")
        await desk.send("agent", c["id"], NOTE, internal=True)

        seen = await desk.messages("agent2", c["id"])
        no_note(seen)
        no_note((await desk.clients["agent2"].get(desk.url("/conversations"))).json())
        assert (await desk.get("agent2", c["id"]))["last_seq"] == 1


class TestLiveEvents:
    async def test_the_customers_channel_never_carries_a_note(
        self, desk: Desk, listen: Listen
    ) -> None:
        customer = await listen(user_channel(desk.users["customer"].id))
        agents = await listen(org_agents_channel(desk.org.id))

        cid = await thread_with_notes(desk)
        await desk.act("agent", cid, "assign", assignee_id=str(desk.users["agent"].id))
        # Agents read up to a note: the customer hears of the public seq below it.
        await desk.clients["agent"].post(desk.conv(cid, "/read"), json={"seq": 4})
        await desk.clients["owner"].post(desk.conv(cid, "/read"), json={"seq": 2})

        to_customer = await customer.drain()
        to_agents = await agents.drain()
        no_note(to_customer)
        created = [e["data"]["seq"] for e in to_customer if e["type"] == "message.created"]
        assert created == [1, 3, 5]
        assert all(
            e["data"]["last_seq"] in (1, 3, 5)
            for e in to_customer
            if e["type"] == "conversation.updated"
        )
        reads = [e["data"] for e in to_customer if e["type"] == "conversation.read"]
        assert [(r["user_id"], r["last_read_seq"]) for r in reads] == [
            (str(desk.users["agent"].id), 3),
            (str(desk.users["owner"].id), 1),
        ]
        # Agents get everything, notes included, in seq order.
        agent_created = [e["data"]["seq"] for e in to_agents if e["type"] == "message.created"]
        assert agent_created == [1, 2, 3, 4, 5]
        assert [e["data"]["internal"] for e in to_agents if e["type"] == "message.created"] == [
            False,
            True,
            False,
            True,
            False,
        ]

    async def test_events_carry_the_conversation_and_the_seq(
        self, desk: Desk, listen: Listen
    ) -> None:
        customer = await listen(user_channel(desk.users["customer"].id))
        c = await desk.open()
        sent = await desk.send("agent", c["id"], "Reply")

        events = await customer.drain()
        message = [e for e in events if e["type"] == "message.created"][-1]
        assert message["data"]["conversation_id"] == c["id"]
        assert message["data"]["seq"] == 2
        assert message["data"]["id"] == sent["id"]
        assert message["data"]["body"] == "Reply"
        updated = [e for e in events if e["type"] == "conversation.updated"]
        assert updated[0]["data"]["id"] == c["id"]

    async def test_a_failed_request_publishes_nothing(self, desk: Desk, listen: Listen) -> None:
        c = await desk.open()
        await desk.act("agent", c["id"], "close")
        agents = await listen(org_agents_channel(desk.org.id))

        response = await desk.clients["agent"].post(
            desk.conv(c["id"], "/messages"), json={"body": "late"}
        )

        assert response.status_code == 409
        assert await agents.drain() == []
