"""The email notice duty: agent replies the customer left unread go out in one email after
the delay, with their text and a link back, never a note; later replies make the next
notice; nothing goes out once the customer has read them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import ModuleType

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.media import files
from tests.support.conftest import Desk
from townsquare.config import Settings
from townsquare.db import SessionSource
from townsquare.email.models import OutboxEmail
from townsquare.support.duties import email_notices
from townsquare.support.models import Conversation
from townsquare.support.notices import TEMPLATE
from townsquare.worker.registry import DutyContext, load_duties

NOTE = "NOTE-only-for-agents: the customer is on the refund watch list"
DELAY = timedelta(seconds=120)


async def sweep(db: SessionSource, settings: Settings) -> int:
    return await email_notices(DutyContext(db=db, settings=settings, worker_id="tests"))


async def notices_to(session: AsyncSession, address: str) -> list[OutboxEmail]:
    return list(
        await session.scalars(
            select(OutboxEmail)
            .where(OutboxEmail.to_address == address, OutboxEmail.template == TEMPLATE)
            .order_by(OutboxEmail.created_at, OutboxEmail.id)
        )
    )


async def stored(session: AsyncSession, conversation_id: str) -> Conversation:
    found = await session.scalar(
        select(Conversation)
        .where(Conversation.id == uuid.UUID(conversation_id))
        .execution_options(populate_existing=True)
    )
    assert found is not None
    return found


def bodies(email: OutboxEmail) -> tuple[str, str]:
    assert email.html_body is not None
    return email.text_body, email.html_body


class TestRegistration:
    def test_both_duties_are_registered(self) -> None:
        names = {d.name for d in load_duties()}
        assert {"support.email_notices", "support.auto_resolve"} <= names


class TestNotice:
    async def test_one_email_carries_the_unread_replies_and_never_a_note(
        self,
        desk: Desk,
        db: SessionSource,
        session: AsyncSession,
        settings: Settings,
        clock: ModuleType,
    ) -> None:
        c = await desk.open(subject="Parking permit")
        await desk.send("agent", c["id"], "First reply: which street?")
        await desk.send("agent", c["id"], NOTE, internal=True)
        clock.travel(timedelta(seconds=30))
        await desk.send("agent2", c["id"], "Second reply <img src=x onerror=alert(1)>")
        address = desk.users["customer"].email

        clock.travel(DELAY - timedelta(seconds=60))
        assert await sweep(db, settings) == 0
        assert await notices_to(session, address) == []

        clock.travel(timedelta(seconds=31))
        assert await sweep(db, settings) == 1

        [email] = await notices_to(session, address)
        assert "Acme" in email.subject
        assert "Parking permit" in email.subject
        text, html = bodies(email)
        link = f"http://testserver/o/{desk.org.slug}/support/{c['id']}"
        for body in (text, html):
            assert "First reply: which street?" in body
            assert "Agent Two" in body
            assert link in body
            assert "NOTE-only-for-agents" not in body
            assert "refund watch list" not in body
        assert "Second reply <img src=x onerror=alert(1)>" in text
        assert "<img" not in html
        assert "Second reply &lt;img src=x onerror=alert(1)&gt;" in html
        assert text.index("First reply") < text.index("Second reply")
        # Sent once: the next sweeps find nothing due.
        assert await sweep(db, settings) == 0
        clock.travel(timedelta(hours=1))
        assert await sweep(db, settings) == 0
        row = await stored(session, c["id"])
        assert (row.notice_due_at, row.notice_sent_seq) == (None, 4)

    async def test_nothing_goes_out_when_the_customer_read_the_replies(
        self,
        desk: Desk,
        db: SessionSource,
        session: AsyncSession,
        settings: Settings,
        clock: ModuleType,
    ) -> None:
        c = await desk.open()
        await desk.send("agent", c["id"], "Reply")
        await desk.send("agent", c["id"], NOTE, internal=True)
        # The customer's cursor stops at the newest public seq: everything is read.
        response = await desk.clients["customer"].post(desk.conv(c["id"], "/read"), json={"seq": 9})
        assert response.json()["last_read_seq"] == 2

        clock.travel(timedelta(hours=2))
        assert await sweep(db, settings) == 0
        assert await notices_to(session, desk.users["customer"].email) == []

    async def test_only_the_replies_still_unread(
        self,
        desk: Desk,
        db: SessionSource,
        session: AsyncSession,
        settings: Settings,
        clock: ModuleType,
    ) -> None:
        c = await desk.open()
        await desk.send("agent", c["id"], "Already seen")
        await desk.clients["customer"].post(desk.conv(c["id"], "/read"), json={"seq": 2})
        await desk.send("agent", c["id"], "Not seen yet")

        clock.travel(DELAY + timedelta(seconds=1))
        assert await sweep(db, settings) == 1

        [email] = await notices_to(session, desk.users["customer"].email)
        for body in bodies(email):
            assert "Not seen yet" in body
            assert "Already seen" not in body

    async def test_later_replies_make_the_next_notice(
        self,
        desk: Desk,
        db: SessionSource,
        session: AsyncSession,
        settings: Settings,
        clock: ModuleType,
    ) -> None:
        c = await desk.open()
        await desk.send("agent", c["id"], "Reply A")
        clock.travel(DELAY + timedelta(seconds=1))
        assert await sweep(db, settings) == 1

        await desk.send("agent", c["id"], "Reply B")
        clock.travel(timedelta(seconds=30))
        await desk.send("agent", c["id"], "Reply C")
        clock.travel(timedelta(seconds=60))
        assert await sweep(db, settings) == 0  # B's delay is not over yet
        clock.travel(DELAY)
        assert await sweep(db, settings) == 1

        first, second = await notices_to(session, desk.users["customer"].email)
        assert "Reply A" in first.text_body
        assert "Reply B" not in first.text_body
        for body in bodies(second):
            assert "Reply B" in body
            assert "Reply C" in body
            assert "Reply A" not in body

    async def test_a_customer_who_writes_back_is_not_emailed(
        self,
        desk: Desk,
        db: SessionSource,
        session: AsyncSession,
        settings: Settings,
        clock: ModuleType,
    ) -> None:
        c = await desk.open()
        await desk.send("agent", c["id"], "Reply")
        await desk.send("customer", c["id"], "Thanks, on it")
        clock.travel(timedelta(hours=1))
        assert await sweep(db, settings) == 0
        assert await notices_to(session, desk.users["customer"].email) == []

    async def test_notes_alone_never_make_a_notice(
        self,
        desk: Desk,
        db: SessionSource,
        session: AsyncSession,
        settings: Settings,
        clock: ModuleType,
    ) -> None:
        c = await desk.open()
        await desk.send("agent", c["id"], NOTE, internal=True)
        assert (await stored(session, c["id"])).notice_due_at is None
        clock.travel(timedelta(hours=1))
        assert await sweep(db, settings) == 0
        assert await notices_to(session, desk.users["customer"].email) == []

    async def test_resolved_still_sends_closed_does_not(
        self,
        desk: Desk,
        db: SessionSource,
        session: AsyncSession,
        settings: Settings,
        clock: ModuleType,
    ) -> None:
        resolved = await desk.open(subject="Resolved one")
        await desk.send("agent", resolved["id"], "Fixed it for you")
        await desk.act("agent", resolved["id"], "resolve")
        closed = await desk.open(subject="Closed one")
        await desk.send("agent", closed["id"], "Closing this")
        await desk.act("agent", closed["id"], "close")

        clock.travel(DELAY + timedelta(seconds=1))
        assert await sweep(db, settings) == 1

        [email] = await notices_to(session, desk.users["customer"].email)
        assert "Resolved one" in email.subject
        assert "Fixed it for you" in email.text_body

    async def test_an_attachment_is_named_not_linked(
        self,
        desk: Desk,
        db: SessionSource,
        session: AsyncSession,
        settings: Settings,
        clock: ModuleType,
    ) -> None:
        c = await desk.open()
        response = await desk.clients["agent"].post(
            desk.conv(c["id"], "/attachments"),
            files={"file": ("steps.pdf", files.pdf(), "application/pdf")},
            data={"body": "Follow these steps"},
        )
        assert response.status_code == 201, response.text

        clock.travel(DELAY + timedelta(seconds=1))
        assert await sweep(db, settings) == 1

        [email] = await notices_to(session, desk.users["customer"].email)
        for body in bodies(email):
            assert "Follow these steps" in body
            assert "steps.pdf" in body
            assert "/storage/" not in body

    async def test_the_link_follows_the_setting(
        self,
        desk: Desk,
        db: SessionSource,
        session: AsyncSession,
        settings: Settings,
        clock: ModuleType,
    ) -> None:
        c = await desk.open()
        await desk.send("agent", c["id"], "Reply")
        clock.travel(DELAY + timedelta(seconds=1))
        custom = settings.model_copy(
            update={"SUPPORT_CONVERSATION_URL": "https://help.example/{org_slug}#{conversation_id}"}
        )
        assert await sweep(db, custom) == 1
        [email] = await notices_to(session, desk.users["customer"].email)
        assert f"https://help.example/{desk.org.slug}#{c['id']}" in email.text_body
