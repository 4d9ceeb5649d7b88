"""An agent who leaves, is removed, or loses the inbox with a role change keeps no
conversations: each returns to the unassigned inbox with a system message."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import DEFAULT_PASSWORD
from tests.support.conftest import API, Desk, audit_actions
from tests.support.test_status import system_events
from townsquare.orgs.models import Membership


async def member_id(session: AsyncSession, desk: Desk, who: str) -> str:
    found = await session.scalar(
        select(Membership.id).where(
            Membership.organization_id == desk.org.id,
            Membership.user_id == desk.users[who].id,
        )
    )
    assert found is not None
    return str(found)


async def assigned_to(desk: Desk, who: str) -> dict[str, Any]:
    c = await desk.open(subject=f"For {who}")
    response = await desk.act("agent", c["id"], "assign", assignee_id=str(desk.users[who].id))
    assert response.status_code == 200, response.text
    return c


async def conversation(desk: Desk, cid: str) -> dict[str, Any]:
    response = await desk.clients["agent"].get(desk.conv(cid))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


class TestDepartures:
    async def test_a_removed_agent_leaves_their_conversations_unassigned(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        active = await assigned_to(desk, "agent2")
        resolved = await assigned_to(desk, "agent2")
        assert (await desk.act("agent", resolved["id"], "resolve")).status_code == 200
        kept = await assigned_to(desk, "agent")

        removed = await desk.clients["owner"].delete(
            desk.url(f"/members/{await member_id(session, desk, 'agent2')}")
        )

        assert removed.status_code == 204, removed.text
        now_active = await conversation(desk, active["id"])
        assert (now_active["status"], now_active["assignee"]) == ("open", None)
        now_resolved = await conversation(desk, resolved["id"])
        assert (now_resolved["status"], now_resolved["assignee"]) == ("resolved", None)
        assert (await conversation(desk, kept["id"]))["assignee"]["id"] == str(
            desk.users["agent"].id
        )
        # The customer sees why, as for an unassignment by hand.
        assert (await system_events(desk, "customer", active["id"]))[-1][1:] == (
            "unassigned",
            "Agent Two left the organization; the conversation is unassigned.",
        )
        assert (await audit_actions(session, desk.org)).count("conversation.unassigned") == 2

    async def test_an_agent_who_leaves_by_themselves(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        c = await assigned_to(desk, "agent2")

        left = await desk.clients["agent2"].post(desk.url("/leave"))

        assert left.status_code == 204, left.text
        assert (await conversation(desk, c["id"]))["assignee"] is None

    async def test_a_role_without_the_inbox_unassigns_and_one_with_it_does_not(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        c = await assigned_to(desk, "agent2")
        url = desk.url(f"/members/{await member_id(session, desk, 'agent2')}")

        to_admin = await desk.clients["owner"].patch(url, json={"role": "admin"})
        assert to_admin.status_code == 200, to_admin.text
        assert (await conversation(desk, c["id"]))["assignee"] is not None

        to_member = await desk.clients["owner"].patch(url, json={"role": "member"})
        assert to_member.status_code == 200, to_member.text
        after = await conversation(desk, c["id"])
        assert (after["status"], after["assignee"]) == ("open", None)
        assert (await system_events(desk, "agent", c["id"]))[-1][2] == (
            "Agent Two no longer answers support conversations; the conversation is unassigned."
        )

    async def test_a_deleted_account_leaves_its_conversations_unassigned(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        c = await assigned_to(desk, "agent2")

        deleted = await desk.clients["agent2"].request(
            "DELETE", f"{API}/auth/me", json={"password": DEFAULT_PASSWORD}
        )

        assert deleted.status_code == 204, deleted.text
        assert (await conversation(desk, c["id"]))["assignee"] is None
        assert (await system_events(desk, "customer", c["id"]))[-1][2] == (
            "Deleted user left the organization; the conversation is unassigned."
        )
