"""Assignment and statuses: system messages both sides see, audit entries, and what a
customer may never do (QUALITY bar 10)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_user
from tests.support.conftest import Desk, audit_actions
from tests.support.test_conversations import problem
from townsquare.orgs.models import AuditLogEntry
from townsquare.support.models import ChatParticipant


async def system_events(desk: Desk, who: str, cid: str) -> list[tuple[int, str, str]]:
    items = (await desk.messages(who, cid))["items"]
    return [(m["seq"], m["system_event"], m["body"]) for m in items if m["type"] == "system"]


class TestAssign:
    async def test_assigning_an_agent_sets_assigned_and_adds_a_participant(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        c = await desk.open()

        response = await desk.act(
            "owner", c["id"], "assign", assignee_id=str(desk.users["agent"].id)
        )

        assert response.status_code == 200, response.text
        assert response.json()["status"] == "assigned"
        assert response.json()["assignee"] == {
            "id": str(desk.users["agent"].id),
            "display_name": "Agent",
        }
        participant = await session.scalar(
            select(ChatParticipant).where(
                ChatParticipant.conversation_id == uuid.UUID(c["id"]),
                ChatParticipant.user_id == desk.users["agent"].id,
            )
        )
        assert participant is not None
        assert (participant.role.value, participant.last_read_seq) == ("agent", 0)
        for who in ("customer", "agent"):
            assert await system_events(desk, who, c["id"]) == [
                (2, "assigned", "Owner assigned the conversation to Agent.")
            ]
        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.action == "conversation.assigned")
        )
        assert entry is not None
        assert (entry.actor_id, entry.target_type, entry.target_id) == (
            desk.users["owner"].id,
            "conversation",
            c["id"],
        )
        assert entry.data == {
            "assignee_id": str(desk.users["agent"].id),
            "previous_assignee_id": None,
        }

    async def test_taking_reassigning_and_unassigning(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        c = await desk.open()
        await desk.act("agent", c["id"], "assign", assignee_id=str(desk.users["agent"].id))
        again = await desk.act("agent", c["id"], "assign", assignee_id=str(desk.users["agent"].id))
        await desk.act("agent", c["id"], "assign", assignee_id=str(desk.users["agent2"].id))
        unassigned = await desk.act("agent2", c["id"], "assign", assignee_id=None)

        assert again.status_code == 200
        assert unassigned.json()["status"] == "open"
        assert unassigned.json()["assignee"] is None
        assert await system_events(desk, "customer", c["id"]) == [
            (2, "assigned", "Agent took the conversation."),
            (3, "assigned", "Agent assigned the conversation to Agent Two."),
            (4, "unassigned", "Agent Two unassigned the conversation."),
        ]
        assert await audit_actions(session, desk.org) == [
            "conversation.assigned",
            "conversation.assigned",
            "conversation.unassigned",
        ]

    async def test_the_assignee_must_be_an_agent_of_the_org(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        c = await desk.open()
        stranger = await create_user(session)
        for user_id in (
            desk.users["member"].id,
            desk.users["customer2"].id,
            desk.users["outsider"].id,
            stranger.id,
            uuid.uuid4(),
        ):
            response = await desk.act("agent", c["id"], "assign", assignee_id=str(user_id))
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["field"] == "assignee_id"
        assert (await desk.get("agent", c["id"]))["status"] == "open"
        assert await system_events(desk, "agent", c["id"]) == []

    async def test_a_closed_conversation_cannot_be_assigned(self, desk: Desk) -> None:
        c = await desk.open()
        await desk.act("agent", c["id"], "close")
        response = await desk.act(
            "agent", c["id"], "assign", assignee_id=str(desk.users["agent"].id)
        )
        problem(response, 409, "conversation_closed")

    async def test_a_resolved_conversation_keeps_its_status_on_assignment(self, desk: Desk) -> None:
        c = await desk.open()
        await desk.act("agent", c["id"], "resolve")
        response = await desk.act(
            "agent", c["id"], "assign", assignee_id=str(desk.users["agent2"].id)
        )
        assert response.json()["status"] == "resolved"
        reopened = await desk.act("agent", c["id"], "reopen")
        assert reopened.json()["status"] == "assigned"


class TestTransitions:
    async def test_resolve_reopen_and_close(self, desk: Desk, session: AsyncSession) -> None:
        c = await desk.open()

        resolved = await desk.act("agent", c["id"], "resolve")
        assert resolved.json()["status"] == "resolved"
        assert resolved.json()["resolved_at"] is not None
        problem(await desk.act("agent", c["id"], "resolve"), 409, "invalid_status_transition")

        reopened = await desk.act("agent", c["id"], "reopen")
        assert reopened.json()["status"] == "open"
        assert reopened.json()["resolved_at"] is None
        problem(await desk.act("agent", c["id"], "reopen"), 409, "invalid_status_transition")

        closed = await desk.act("agent2", c["id"], "close")
        assert closed.json()["status"] == "closed"
        assert closed.json()["closed_at"] is not None
        for action in ("close", "reopen", "resolve"):
            problem(await desk.act("agent", c["id"], action), 409, "conversation_closed")

        assert [e[1] for e in await system_events(desk, "customer", c["id"])] == [
            "resolved",
            "reopened",
            "closed",
        ]
        assert await audit_actions(session, desk.org) == [
            "conversation.resolved",
            "conversation.reopened",
            "conversation.closed",
        ]

    async def test_a_customer_reopening_by_message_is_audited(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        c = await desk.open()
        await desk.act("agent", c["id"], "resolve")
        await desk.send("customer", c["id"], "Not fixed")

        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.action == "conversation.reopened")
        )
        assert entry is not None
        assert entry.data == {
            "by": "customer_message",
            "customer_id": str(desk.users["customer"].id),
        }
        events = await system_events(desk, "agent", c["id"])
        assert events[-1][1] == "reopened"


class TestCustomersNeverSetAStatus:
    async def test_status_routes_refuse_customers_and_change_nothing(self, desk: Desk) -> None:
        c = await desk.open()
        for action, body in (
            ("resolve", {}),
            ("close", {}),
            ("reopen", {}),
            ("assign", {"assignee_id": str(desk.users["agent"].id)}),
        ):
            # A customer who is no member of the org does not get past its guard.
            outside = await desk.act("customer", c["id"], action, **body)
            problem(outside, 404, "organization_not_found")
            # A member without the support permission is refused outright.
            member = await desk.act("member", c["id"], action, **body)
            problem(member, 403, "permission_denied")
        seen = await desk.get("customer", c["id"])
        assert (seen["status"], seen["assignee"], seen["last_seq"]) == ("open", None, 1)

    async def test_a_status_in_a_message_body_is_refused(self, desk: Desk) -> None:
        c = await desk.open()
        for extra in (
            {"status": "closed"},
            {"type": "system"},
            {"sender_id": str(desk.users["agent"].id)},
        ):
            response = await desk.clients["customer"].post(
                desk.conv(c["id"], "/messages"), json={"body": "x", **extra}
            )
            assert response.status_code == 422, response.text
        assert (await desk.get("customer", c["id"]))["status"] == "open"
