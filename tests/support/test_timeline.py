"""The service pieces the later duties and attachments build on: an `attachment` message
takes the next seq like any other, and a resolution without an actor (auto-resolve)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.conftest import Desk
from townsquare.config import Settings
from townsquare.orgs.models import AuditLogEntry
from townsquare.support import status
from townsquare.support.enums import ChatMessageType, ChatParticipantRole
from townsquare.support.models import Conversation
from townsquare.support.timeline import StoredAttachment, append


async def locked(session: AsyncSession, conversation_id: str) -> Conversation:
    found = await session.scalar(
        select(Conversation)
        .where(Conversation.id == uuid.UUID(conversation_id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert found is not None
    return found


class TestTimeline:
    async def test_an_attachment_message_takes_the_next_seq(
        self, desk: Desk, session: AsyncSession, settings: Settings
    ) -> None:
        c = await desk.open()
        conversation = await locked(session, c["id"])

        message = await append(
            session,
            conversation,
            sender=desk.users["customer"],
            role=ChatParticipantRole.customer,
            type_=ChatMessageType.attachment,
            body="",
            attachment=StoredAttachment(
                key="chat/x.png",
                filename="x.png",
                content_type="image/png",
                size=10,
                width=2,
                height=3,
            ),
            settings=settings,
        )
        await session.flush()

        assert message.seq == 2
        [_, shown] = (await desk.messages("agent", c["id"]))["items"]
        assert shown["type"] == "attachment"
        attachment = shown["attachment"]
        assert attachment.pop("url").startswith("http://testserver/api/v1/storage/chat/x.png?")
        assert attachment.pop("url_expires_at") is not None
        assert attachment == {
            "filename": "x.png",
            "content_type": "image/png",
            "size": 10,
            "width": 2,
            "height": 3,
        }

    async def test_resolving_without_an_actor(
        self, desk: Desk, session: AsyncSession, settings: Settings
    ) -> None:
        c = await desk.open()
        conversation = await locked(session, c["id"])

        await status.resolve_unattended(
            session, conversation, body="Resolved after a quiet day.", settings=settings
        )
        await session.flush()

        seen = await desk.get("customer", c["id"])
        assert seen["status"] == "resolved"
        last = (await desk.messages("customer", c["id"]))["items"][-1]
        assert (last["type"], last["system_event"], last["sender"]) == ("system", "resolved", None)
        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.action == "conversation.resolved")
        )
        assert entry is not None
        assert entry.actor_id is None
