"""Attachments on both storage backends: what is accepted and how it shows, and QUALITY
bar 14 for the chat's uploads: everything refused is refused before anything is kept."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.media import files
from tests.media.conftest import problem
from tests.support.conftest import Files, FilesFactory, Listener
from tests.support.test_conversations import message_count
from townsquare.realtime.events import org_agents_channel, user_channel
from townsquare.support.models import ChatMessage, Conversation


def key_pattern(chat: Files, conversation_id: str) -> re.Pattern[str]:
    """The server's key for an attachment: nothing of the client's filename in it."""
    return re.compile(rf"^orgs/{chat.desk.org.id}/conversations/{conversation_id}/[0-9a-f-]{{36}}$")


class TestAccepted:
    async def test_a_customers_image_becomes_an_attachment_message(
        self, chat: Files, session: AsyncSession
    ) -> None:
        c = await chat.desk.open()
        data = files.png(120, 80)

        sent = await chat.attached(
            "customer", c["id"], data, "Broken screen.png", body="It looks like this"
        )

        assert (sent["seq"], sent["type"], sent["internal"]) == (2, "attachment", False)
        assert sent["body"] == "It looks like this"
        assert sent["sender"]["role"] == "customer"
        attachment = sent["attachment"]
        assert attachment["filename"] == "Broken screen.png"
        assert (attachment["content_type"], attachment["size"]) == ("image/png", len(data))
        assert (attachment["width"], attachment["height"]) == (120, 80)
        assert attachment["url"]
        assert attachment["url_expires_at"]
        got = await chat.download(attachment["url"])
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-type"] == "image/png"
        assert got.headers["content-disposition"].startswith("inline;")
        if chat.backend.name == "local":
            assert got.headers["x-content-type-options"] == "nosniff"
        [stored] = await chat.backend.objects()
        assert key_pattern(chat, c["id"]).match(stored)
        row = await session.scalar(select(ChatMessage).where(ChatMessage.seq == 2))
        assert row is not None
        assert row.attachment_key == stored
        # Both sides see it, each with a link of their own.
        for who in ("customer", "agent"):
            [_, shown] = (await chat.desk.messages(who, c["id"]))["items"]
            assert shown["id"] == sent["id"]
            assert shown["attachment"]["filename"] == "Broken screen.png"
            assert (await chat.download(shown["attachment"]["url"])).content == data

    @pytest.mark.parametrize(
        ("make", "name", "declared", "stored_type"),
        [
            (lambda: files.image("JPEG"), "photo.jpg", "image/jpeg", "image/jpeg"),
            (lambda: files.image("GIF"), "anim.gif", "image/gif", "image/gif"),
            (lambda: files.image("WEBP"), "pic.webp", "image/webp", "image/webp"),
            (lambda: files.image("AVIF"), "pic.avif", "image/avif", "image/avif"),
            (files.pdf, "invoice.pdf", "application/pdf", "application/pdf"),
            (lambda: files.image("PNG"), "pic.png", "application/octet-stream", "image/png"),
        ],
    )
    async def test_images_and_pdf(
        self, chat: Files, make: Any, name: str, declared: str, stored_type: str
    ) -> None:
        c = await chat.desk.open()
        data: bytes = make()
        sent = await chat.attached("agent", c["id"], data, name, content_type=declared)
        assert sent["attachment"]["content_type"] == stored_type
        got = await chat.download(sent["attachment"]["url"])
        assert (got.content, got.headers["content-type"]) == (data, stored_type)
        assert got.headers["content-disposition"].startswith("inline;")

    async def test_an_agents_file_is_a_reply(self, chat: Files, session: AsyncSession) -> None:
        c = await chat.desk.open()
        sent = await chat.attached(
            "agent", c["id"], files.pdf(), "steps.pdf", content_type="application/pdf"
        )
        assert sent["sender"]["role"] == "agent"
        assert sent["body"] == ""
        conversation = await session.get(Conversation, uuid.UUID(c["id"]))
        assert conversation is not None
        await session.refresh(conversation)
        assert conversation.first_response_at is not None
        assert conversation.notice_due_at is not None
        seen = await chat.desk.get("customer", c["id"])
        assert (seen["last_seq"], seen["unread_count"]) == (2, 1)

    async def test_a_retry_answers_the_original_and_keeps_one_file(
        self, chat: Files, session: AsyncSession
    ) -> None:
        c = await chat.desk.open()
        data = files.png(30, 20)
        first = await chat.attach("customer", c["id"], data, client_msg_id="up-1")
        again = await chat.attach("customer", c["id"], data, client_msg_id="up-1")
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["attachment"]["url"]
        assert len(await chat.backend.objects()) == 1
        assert await message_count(session, c["id"]) == 2

    async def test_a_retry_named_after_the_file_also_keeps_one(self, chat: Files) -> None:
        """`client_msg_id` sent after the file: known only once the file is stored."""
        c = await chat.desk.open()
        data = files.png(30, 20)
        body = (
            files.multipart_head("a.png", "image/png")
            + data
            + f"\r\n--{files.BOUNDARY}\r\n".encode()
            + b'Content-Disposition: form-data; name="client_msg_id"\r\n\r\nlate-1'
            + files.MULTIPART_TAIL
        )
        url = chat.desk.conv(c["id"], "/attachments")
        headers = {"content-type": files.CONTENT_TYPE}
        client = chat.desk.clients["customer"]
        first = await client.post(url, content=body, headers=headers)
        again = await client.post(url, content=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 200), again.text
        assert first.json()["client_msg_id"] == "late-1"
        assert len(await chat.backend.objects()) == 1

    async def test_a_customers_file_reopens_a_resolved_conversation(self, chat: Files) -> None:
        c = await chat.desk.open()
        await chat.desk.act("agent", c["id"], "resolve")
        sent = await chat.attached("customer", c["id"], files.png(10, 10))
        seen = await chat.desk.get("agent", c["id"])
        assert seen["status"] == "open"
        items = (await chat.desk.messages("agent", c["id"]))["items"]
        assert [m["system_event"] for m in items[-2:]] == ["reopened", None]
        assert items[-1]["id"] == sent["id"]

    async def test_live_events_carry_the_attachment(self, chat: Files, listen: Any) -> None:
        customer: Listener = await listen(user_channel(chat.desk.users["customer"].id))
        agents: Listener = await listen(org_agents_channel(chat.desk.org.id))
        c = await chat.desk.open()
        sent = await chat.attached("customer", c["id"], files.png(10, 10))
        for listener in (customer, agents):
            [event] = [
                e
                for e in await listener.drain()
                if e["type"] == "message.created" and e["data"]["seq"] == 2
            ]
            assert event["data"]["id"] == sent["id"]
            assert event["data"]["attachment"]["url"]


class TestRefused:
    """Each refusal keeps no object and writes no message."""

    @pytest.mark.parametrize(
        ("data", "name", "declared", "status", "code"),
        [
            (files.HTML, "invoice.png", "image/png", 415, "unsupported_file_type"),
            (files.HTML, "page.html", "text/html", 415, "unsupported_file_type"),
            (files.SHELL_SCRIPT, "run.png.sh", "image/png", 415, "unsupported_file_type"),
            (files.png(20, 20), "invoice.php.png", "image/png", 415, "unsupported_file_type"),
            (files.HOSTILE_SVG, "logo.svg", "image/svg+xml", 415, "unsupported_file_type"),
            (files.mp4(4096), "clip.mp4", "video/mp4", 415, "unsupported_file_type"),
            # Bytes, extension and declared type must agree.
            (files.png(20, 20), "photo.jpg", "image/jpeg", 415, "unsupported_file_type"),
            (files.png(20, 20), "photo.png", "image/jpeg", 415, "unsupported_file_type"),
            (files.png(20, 20), "photo.png", "image/svg+xml", 415, "unsupported_file_type"),
            (files.image("JPEG"), "photo.png", "image/png", 415, "unsupported_file_type"),
            (b"", "empty.png", "image/png", 422, "empty_file"),
            (files.png_lookalike(), "fake.png", "image/png", 422, "invalid_image"),
            (files.truncated_png(), "half.png", "image/png", 422, "invalid_image"),
            (files.png_bomb(), "bomb.png", "image/png", 422, "image_too_large"),
        ],
        ids=[
            "html-as-png", "html", "script", "php-png", "svg", "mp4", "png-as-jpg",
            "png-declared-jpeg", "png-declared-svg", "jpeg-as-png", "empty", "lookalike",
            "truncated", "bomb",
        ],
    )  # fmt: skip
    async def test_refusals(
        self,
        chat: Files,
        session: AsyncSession,
        data: bytes,
        name: str,
        declared: str,
        status: int,
        code: str,
    ) -> None:
        c = await chat.desk.open()
        response = await chat.attach("customer", c["id"], data, name, declared)
        problem(response, status, code)
        assert await chat.backend.stored() == []
        assert await message_count(session, c["id"]) == 1

    async def test_one_byte_over_the_limit(
        self, files_factory: FilesFactory, session: AsyncSession
    ) -> None:
        data = files.png(64, 64)
        chat = await files_factory(SUPPORT_ATTACHMENT_MAX_BYTES=len(data) - 1)
        c = await chat.desk.open()
        problem(await chat.attach("customer", c["id"], data), 413, "file_too_large")
        assert await chat.backend.stored() == []
        assert await message_count(session, c["id"]) == 1
        # Exactly at the limit is fine.
        exact = await files_factory(SUPPORT_ATTACHMENT_MAX_BYTES=len(data))
        c = await exact.desk.open()
        assert (await exact.attach("customer", c["id"], data)).status_code == 201

    async def test_a_body_announced_too_large_is_refused_before_it_is_read(
        self, files_factory: FilesFactory
    ) -> None:
        chat = await files_factory(SUPPORT_ATTACHMENT_MAX_BYTES=1000)

        async def endless() -> Any:
            yield files.multipart_head("big.png", "image/png")
            for _ in range(10_000):
                yield b"\x00" * 65536

        c = await chat.desk.open()
        response = await chat.desk.clients["customer"].post(
            chat.desk.conv(c["id"], "/attachments"),
            content=endless(),
            headers={"content-type": files.CONTENT_TYPE, "content-length": str(655_360_000)},
        )
        problem(response, 413, "file_too_large")
        assert await chat.backend.stored() == []

    async def test_a_closed_conversation(self, chat: Files, session: AsyncSession) -> None:
        c = await chat.desk.open()
        await chat.desk.act("agent", c["id"], "close")
        for who in ("customer", "agent"):
            problem(await chat.attach(who, c["id"], files.png(8, 8)), 409, "conversation_closed")
        assert await chat.backend.stored() == []

    async def test_form_fields(self, chat: Files, session: AsyncSession) -> None:
        c = await chat.desk.open()
        image = files.png(8, 8)
        long_caption = await chat.attach("customer", c["id"], image, body="x" * 1001)
        assert problem(long_caption, 422, "validation_error")["errors"][0]["field"] == "body"
        # Attachments are public to the conversation: there is no internal attachment.
        internal = await chat.attach("agent", c["id"], image, internal="true")
        assert problem(internal, 422, "validation_error")["errors"][0]["field"] == "internal"
        bad_id = await chat.attach("customer", c["id"], image, client_msg_id="no spaces")
        assert problem(bad_id, 422, "validation_error")["errors"][0]["field"] == "client_msg_id"
        not_a_form = await chat.desk.clients["customer"].post(
            chat.desk.conv(c["id"], "/attachments"), json={"file": "x"}
        )
        problem(not_a_form, 422, "invalid_multipart")
        no_file = await chat.desk.clients["customer"].post(
            chat.desk.conv(c["id"], "/attachments"),
            content=b"--" + files.BOUNDARY.encode() + b"--\r\n",
            headers={"content-type": files.CONTENT_TYPE},
        )
        problem(no_file, 422, "invalid_multipart")
        assert await chat.backend.stored() == []
        assert await message_count(session, c["id"]) == 1

    @pytest.mark.parametrize(
        ("raw", "shown"),
        [
            (b"../../etc/passwd.png", "passwd.png"),
            (b"..\\..\\boot.png", "boot.png"),
            (b"tab\tescape\x1b[31m.png", "tabescape[31m.png"),
            (b"right\xe2\x80\xaeto-left.png", "rightto-left.png"),
            (b"nul\x00byte.png", "nulbyte.png"),
        ],
    )
    async def test_a_filename_never_reaches_a_path_or_a_header(
        self, chat: Files, raw: bytes, shown: str
    ) -> None:
        c = await chat.desk.open()
        response = await chat.desk.clients["customer"].post(
            chat.desk.conv(c["id"], "/attachments"),
            content=files.multipart(files.png(8, 8), raw, "image/png"),
            headers={"content-type": files.CONTENT_TYPE},
        )
        assert response.status_code == 201, response.text
        attachment = response.json()["attachment"]
        assert attachment["filename"] == shown
        [stored] = await chat.backend.objects()
        assert key_pattern(chat, c["id"]).match(stored)
        got = await chat.download(attachment["url"])
        assert got.status_code == 200
        assert "x-injected" not in got.headers
        assert "\n" not in got.headers["content-disposition"]

    async def test_a_line_break_in_a_filename_breaks_its_part_and_keeps_nothing(
        self, chat: Files, session: AsyncSession
    ) -> None:
        c = await chat.desk.open()
        response = await chat.desk.clients["customer"].post(
            chat.desk.conv(c["id"], "/attachments"),
            content=files.multipart(files.png(8, 8), b"evil\r\nX-Injected: 1.png", "image/png"),
            headers={"content-type": files.CONTENT_TYPE},
        )
        problem(response, 415, "unsupported_file_type")
        assert "x-injected" not in response.headers
        assert await chat.backend.stored() == []
        assert await message_count(session, c["id"]) == 1
