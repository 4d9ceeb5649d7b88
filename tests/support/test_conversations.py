"""Opening conversations, who may see which, and the lists (inbox, own, across orgs)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import ModuleType

import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_user, sign_in
from tests.support.conftest import API, Desk, NewClient
from townsquare.kit.pagination import encode_cursor
from townsquare.orgs.enums import Module
from townsquare.orgs.models import OrganizationModule
from townsquare.support.models import ChatMessage, ChatParticipant, Conversation


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text


class TestOpen:
    async def test_a_customer_who_is_no_member_opens_one_with_its_first_message(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        opened = await desk.open(subject="  Broken login  ", body="I cannot sign in.")

        assert opened["subject"] == "Broken login"
        assert opened["status"] == "open"
        assert opened["customer"] == {
            "id": str(desk.users["customer"].id),
            "display_name": "Customer",
        }
        assert opened["assignee"] is None
        assert (opened["last_seq"], opened["last_read_seq"], opened["unread_count"]) == (1, 1, 0)
        [first] = (await desk.messages("customer", opened["id"]))["items"]
        assert first["seq"] == 1
        assert first["type"] == "text"
        assert first["body"] == "I cannot sign in."
        assert first["sender"]["role"] == "customer"
        participants = (
            await session.scalars(
                select(ChatParticipant).where(
                    ChatParticipant.conversation_id == uuid.UUID(opened["id"])
                )
            )
        ).all()
        assert [(p.user_id, p.role.value, p.last_read_seq) for p in participants] == [
            (desk.users["customer"].id, "customer", 1)
        ]

    async def test_a_retry_with_the_same_client_msg_id_answers_200_with_the_original(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        body = {"subject": "Help", "body": "Hello", "client_msg_id": "open-1"}
        first = await desk.clients["customer"].post(desk.url("/conversations"), json=body)
        again = await desk.clients["customer"].post(desk.url("/conversations"), json=body)
        other = await desk.clients["customer2"].post(desk.url("/conversations"), json=body)

        assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
        assert again.json()["id"] == first.json()["id"]
        assert other.json()["id"] != first.json()["id"]
        count = await session.scalar(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.organization_id == desk.org.id)
        )
        assert count == 2

    async def test_unverified_accounts_cannot_open_one(
        self, desk: Desk, session: AsyncSession, new_client: NewClient
    ) -> None:
        unverified = await create_user(session, verified=False)
        client = await new_client()
        await sign_in(session, client, unverified)

        response = await client.post(desk.url("/conversations"), json={"subject": "a", "body": "b"})

        problem(response, 403, "email_not_verified")

    async def test_no_such_org_is_404_and_support_off_is_403(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        missing = await desk.clients["customer"].post(
            f"{API}/orgs/no-such-org/conversations", json={"subject": "a", "body": "b"}
        )
        problem(missing, 404, "organization_not_found")
        await session.execute(
            delete(OrganizationModule).where(
                OrganizationModule.organization_id == desk.org.id,
                OrganizationModule.module == Module.support,
            )
        )
        off = await desk.clients["customer"].post(
            desk.url("/conversations"), json={"subject": "a", "body": "b"}
        )
        problem(off, 403, "module_disabled")

    async def test_fields_a_customer_may_not_set_are_refused(self, desk: Desk) -> None:
        for extra in (
            {"status": "closed"},
            {"assignee_id": str(desk.users["agent"].id)},
            {"organization_id": str(desk.other_org.id)},
            {"customer_id": str(desk.users["customer2"].id)},
        ):
            response = await desk.clients["customer"].post(
                desk.url("/conversations"), json={"subject": "a", "body": "b", **extra}
            )
            assert response.status_code == 422, response.text

    async def test_empty_subject_or_body_is_422(self, desk: Desk) -> None:
        for body in ({"subject": " ", "body": "b"}, {"subject": "a", "body": "  "}):
            response = await desk.clients["customer"].post(desk.url("/conversations"), json=body)
            assert response.status_code == 422, response.text


class TestWhoSeesWhat:
    async def test_customers_see_only_their_own(self, desk: Desk) -> None:
        mine = await desk.open("customer")
        theirs = await desk.open("customer2")

        assert (await desk.clients["customer"].get(desk.conv(mine["id"]))).status_code == 200
        problem(
            await desk.clients["customer"].get(desk.conv(theirs["id"])),
            404,
            "conversation_not_found",
        )
        problem(
            await desk.clients["customer"].get(desk.conv(theirs["id"], "/messages")),
            404,
            "conversation_not_found",
        )
        problem(
            await desk.clients["customer"].post(
                desk.conv(theirs["id"], "/messages"), json={"body": "x"}
            ),
            404,
            "conversation_not_found",
        )
        listed = (await desk.clients["customer"].get(desk.url("/conversations"))).json()
        assert [c["id"] for c in listed["items"]] == [mine["id"]]

    async def test_a_member_without_the_support_permission_is_a_customer(self, desk: Desk) -> None:
        theirs = await desk.open("customer")
        mine = await desk.open("member")

        listed = (await desk.clients["member"].get(desk.url("/conversations"))).json()
        assert [c["id"] for c in listed["items"]] == [mine["id"]]
        problem(
            await desk.clients["member"].get(desk.conv(theirs["id"])), 404, "conversation_not_found"
        )

    async def test_agents_see_every_conversation_of_their_org(self, desk: Desk) -> None:
        a = await desk.open("customer")
        b = await desk.open("customer2")

        for agent in ("agent", "owner"):
            listed = (await desk.clients[agent].get(desk.url("/conversations"))).json()
            assert {c["id"] for c in listed["items"]} == {a["id"], b["id"]}

    async def test_another_orgs_conversation_is_not_found(self, desk: Desk) -> None:
        elsewhere = (
            await desk.clients["customer"].post(
                desk.url("/conversations", org=desk.other_org), json={"subject": "a", "body": "b"}
            )
        ).json()

        for who in ("agent", "owner"):
            problem(
                await desk.clients[who].get(desk.conv(elsewhere["id"])),
                404,
                "conversation_not_found",
            )
            problem(
                await desk.clients[who].post(desk.conv(elsewhere["id"], "/resolve")),
                404,
                "conversation_not_found",
            )
        # The other org's own agent sees it under their org, not under Acme.
        problem(
            await desk.clients["outsider"].get(desk.conv(elsewhere["id"])),
            404,
            "conversation_not_found",
        )
        ok = await desk.clients["outsider"].get(
            desk.url(f"/conversations/{elsewhere['id']}", org=desk.other_org)
        )
        assert ok.status_code == 200

    async def test_anonymous_is_401(self, desk: Desk) -> None:
        response = await desk.anonymous.get(desk.url("/conversations"))
        problem(response, 401, "not_authenticated")


class TestInboxFilters:
    async def test_status_assignee_and_customer(self, desk: Desk) -> None:
        a = await desk.open("customer", subject="A")
        b = await desk.open("customer2", subject="B")
        c = await desk.open("customer", subject="C")
        await desk.act("agent", a["id"], "assign", assignee_id=str(desk.users["agent"].id))
        await desk.act("agent", b["id"], "assign", assignee_id=str(desk.users["agent2"].id))
        await desk.act("agent", c["id"], "resolve")

        async def ids(**params: str) -> set[str]:
            response = await desk.clients["agent"].get(desk.url("/conversations"), params=params)
            assert response.status_code == 200, response.text
            return {item["id"] for item in response.json()["items"]}

        assert await ids(assignee="me") == {a["id"]}
        assert await ids(assignee=str(desk.users["agent2"].id)) == {b["id"]}
        assert await ids(assignee="unassigned") == {c["id"]}
        assert await ids(assignee="any") == {a["id"], b["id"], c["id"]}
        assert await ids(status="assigned") == {a["id"], b["id"]}
        assert await ids(status="resolved") == {c["id"]}
        assert await ids(customer=str(desk.users["customer"].id)) == {a["id"], c["id"]}
        assert await ids(customer=str(desk.users["customer"].id), status="resolved") == {c["id"]}
        bad = await desk.clients["agent"].get(
            desk.url("/conversations"), params={"assignee": "bob"}
        )
        assert bad.status_code == 422

    async def test_customers_may_filter_by_status_only(self, desk: Desk) -> None:
        await desk.open("customer")
        ok = await desk.clients["customer"].get(
            desk.url("/conversations"), params={"status": "open"}
        )
        assert ok.status_code == 200
        for params in ({"assignee": "any"}, {"customer": str(desk.users["customer2"].id)}):
            response = await desk.clients["customer"].get(desk.url("/conversations"), params=params)
            problem(response, 403, "agents_only")


class TestPaging:
    async def test_newest_activity_first_with_a_cursor(self, desk: Desk, clock: ModuleType) -> None:
        opened = []
        for n in range(5):
            opened.append(await desk.open("customer", subject=f"S{n}"))
            clock.travel(timedelta(seconds=1))
        # Activity moves the oldest to the top.
        await desk.send("agent", opened[0]["id"], "Bump")

        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (
                await desk.clients["agent"].get(desk.url("/conversations"), params=params)
            ).json()
            seen += [item["subject"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ["S0", "S4", "S3", "S2", "S1"]

    async def test_a_malformed_cursor_is_400(self, desk: Desk) -> None:
        for values in (
            {"at": 1},
            {"at": "2026-01-01T00:00:00+00:00", "id": 5},
            {"at": "x", "id": "y"},
            {"at": "2026-01-01T00:00:00", "id": str(uuid.uuid4())},
        ):
            response = await desk.clients["agent"].get(
                desk.url("/conversations"), params={"cursor": encode_cursor(values)}
            )
            problem(response, 400, "invalid_cursor")
        for cursor in ("nonsense", "eyJhdCI6MX0"):
            response = await desk.clients["agent"].get(
                desk.url("/conversations"), params={"cursor": cursor}
            )
            problem(response, 400, "invalid_cursor")


class TestMyConversations:
    async def test_across_orgs_with_unread_counts(self, desk: Desk, session: AsyncSession) -> None:
        here = await desk.open("customer", subject="Here")
        there = (
            await desk.clients["customer"].post(
                desk.url("/conversations", org=desk.other_org),
                json={"subject": "There", "body": "b"},
            )
        ).json()
        await desk.send("agent", here["id"], "Reply one")
        await desk.send("agent", here["id"], "Reply two")
        await desk.clients["customer2"].post(
            desk.url("/conversations"), json={"subject": "x", "body": "y"}
        )

        page = (await desk.clients["customer"].get(f"{API}/me/conversations")).json()

        assert [
            (i["subject"], i["unread_count"], i["organization"]["slug"]) for i in page["items"]
        ] == [
            ("Here", 2, desk.org.slug),
            ("There", 0, desk.other_org.slug),
        ]
        assert page["items"][0]["last_seq"] == 3
        assert page["next_cursor"] is None
        assert there["id"] == page["items"][1]["id"]

    async def test_an_org_whose_support_is_off_is_left_out(
        self, desk: Desk, session: AsyncSession
    ) -> None:
        await desk.open("customer")
        await session.execute(
            delete(OrganizationModule).where(
                OrganizationModule.organization_id == desk.org.id,
                OrganizationModule.module == Module.support,
            )
        )
        page = (await desk.clients["customer"].get(f"{API}/me/conversations")).json()
        assert page["items"] == []

    async def test_pages_by_cursor(self, desk: Desk, clock: ModuleType) -> None:
        for n in range(3):
            await desk.open("customer", subject=f"S{n}")
            clock.travel(timedelta(seconds=1))
        first = (
            await desk.clients["customer"].get(f"{API}/me/conversations", params={"limit": 2})
        ).json()
        rest = (
            await desk.clients["customer"].get(
                f"{API}/me/conversations", params={"limit": 2, "cursor": first["next_cursor"]}
            )
        ).json()
        assert [i["subject"] for i in first["items"] + rest["items"]] == ["S2", "S1", "S0"]
        assert rest["next_cursor"] is None


async def message_count(session: AsyncSession, conversation_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(ChatMessage)
        .where(ChatMessage.conversation_id == uuid.UUID(conversation_id))
    )
    return int(count or 0)
