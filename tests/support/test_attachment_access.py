"""Who may attach files and who gets their download links: the conversation's customer and
the organization's agents, nobody else; links are short-lived and die with the org."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.media import files
from tests.media.conftest import problem
from tests.support.conftest import Files
from tests.support.test_conversations import message_count
from townsquare.orgs.enums import Permission
from townsquare.orgs.permissions import role_has
from townsquare.storage.duties import delete_objects
from townsquare.storage.models import StorageDeletion
from townsquare.support import attachments
from townsquare.worker.registry import DutyContext


class TestWhoMayAttach:
    @pytest.mark.parametrize("who", ["customer2", "outsider", "member"])
    async def test_anyone_else_finds_no_conversation(
        self, chat: Files, session: AsyncSession, who: str
    ) -> None:
        c = await chat.desk.open()
        await chat.attached("customer", c["id"], files.png(8, 8))
        before = await chat.backend.objects()

        response = await chat.attach(who, c["id"], files.png(8, 8))

        problem(response, 404, "conversation_not_found")
        listed = await chat.desk.clients[who].get(chat.desk.conv(c["id"], "/messages"))
        problem(listed, 404, "conversation_not_found")
        assert await chat.backend.objects() == before
        assert await message_count(session, c["id"]) == 2

    async def test_an_agent_of_another_org_through_their_own_org(self, chat: Files) -> None:
        c = await chat.desk.open()
        response = await chat.desk.clients["outsider"].post(
            chat.desk.url(f"/conversations/{c['id']}/attachments", org=chat.desk.other_org),
            files={"file": ("a.png", files.png(8, 8), "image/png")},
        )
        problem(response, 404, "conversation_not_found")
        assert await chat.backend.objects() == []

    async def test_anonymous(self, chat: Files) -> None:
        c = await chat.desk.open()
        response = await chat.desk.anonymous.post(
            chat.desk.conv(c["id"], "/attachments"),
            files={"file": ("a.png", files.png(8, 8), "image/png")},
        )
        problem(response, 401, "not_authenticated")

    async def test_an_agent_whose_role_may_not_attach(
        self, chat: Files, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every role with the inbox may attach today; the check is there if one may not."""
        c = await chat.desk.open()
        monkeypatch.setattr(
            attachments,
            "role_has",
            lambda role, permission: (
                permission != Permission.chat_attachments and role_has(role, permission)
            ),
        )
        problem(await chat.attach("agent", c["id"], files.png(8, 8)), 403, "permission_denied")
        # The customer's own right does not come from a role.
        assert (await chat.attach("customer", c["id"], files.png(8, 8))).status_code == 201

    async def test_a_member_who_opened_a_conversation_attaches_as_its_customer(
        self, chat: Files
    ) -> None:
        c = await chat.desk.open("member")
        sent = await chat.attached("member", c["id"], files.png(8, 8))
        assert sent["sender"]["role"] == "customer"


class TestLinks:
    async def test_each_side_gets_links_to_both_sides_files(self, chat: Files) -> None:
        c = await chat.desk.open()
        mine = files.png(8, 8)
        theirs = files.pdf()
        await chat.attached("customer", c["id"], mine)
        await chat.attached("agent", c["id"], theirs, "reply.pdf", content_type="application/pdf")
        for who in ("customer", "agent", "agent2", "owner"):
            items = (await chat.desk.messages(who, c["id"]))["items"]
            urls = [m["attachment"]["url"] for m in items if m["attachment"]]
            assert [(await chat.download(url)).content for url in urls] == [mine, theirs]

    async def test_links_are_short_lived_and_renewed_by_reading_again(
        self, chat: Files, clock: ModuleType
    ) -> None:
        if chat.backend.name != "local":
            pytest.skip("S3 checks its links' expiry against its own clock")
        c = await chat.desk.open()
        sent = await chat.attached("customer", c["id"], files.png(8, 8))
        assert chat.settings.MEDIA_URL_TTL_SECONDS <= 900

        clock.travel(timedelta(seconds=chat.settings.MEDIA_URL_TTL_SECONDS + 1))

        problem(await chat.download(sent["attachment"]["url"]), 403, "invalid_signature")
        [_, again] = (await chat.desk.messages("customer", c["id"]))["items"]
        assert (await chat.download(again["attachment"]["url"])).status_code == 200

    async def test_deleting_the_organization_removes_its_files(
        self, chat: Files, session: AsyncSession
    ) -> None:
        c = await chat.desk.open()
        await chat.attached("customer", c["id"], files.png(8, 8))
        await chat.attached("agent", c["id"], files.pdf(), "a.pdf", content_type="application/pdf")
        kept = await chat.backend.objects()
        assert len(kept) == 2

        response = await chat.desk.clients["owner"].delete(chat.desk.url())
        assert response.status_code == 204, response.text

        queued = set(await session.scalars(select(StorageDeletion.storage_key)))
        assert set(kept) <= queued
        ctx = DutyContext(
            db=chat.app.state.database,
            settings=chat.settings,
            worker_id="tests",
            storage_backend=chat.app.state.storage,
        )
        assert await delete_objects(ctx) >= 2
        assert await chat.backend.objects() == []
