"""A conversation's one sequence of messages: how a message gets its seq, and what it
changes on its conversation.

The seq comes from one atomic `UPDATE conversations SET last_seq = last_seq + 1 ...
RETURNING last_seq`, which holds the conversation's row until the commit (PostgreSQL),
or runs inside the one write transaction SQLite allows at a time. So seq N+1 can never
commit before seq N: every reader sees one order with no gaps. Internal notes take seqs
in the same sequence; customers see the same order with those seqs missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db import flush_or_conflict
from townsquare.kit import clock
from townsquare.support import live, views
from townsquare.support.enums import ChatMessageType, ChatParticipantRole, SystemEvent
from townsquare.support.models import ChatMessage, Conversation

CLIENT_MSG_ID_CONSTRAINT = "uq_chat_messages_conversation_id_sender_id_client_msg_id"


class MessageRetried(Exception):
    """Another request of the same sender with the same `client_msg_id` committed first."""


@dataclass(frozen=True)
class StoredAttachment:
    """A file already in storage that an `attachment` message points to."""

    key: str
    filename: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None


async def append(
    session: AsyncSession,
    conversation: Conversation,
    *,
    sender: User | None,
    role: ChatParticipantRole | None,
    type_: ChatMessageType,
    body: str,
    internal: bool = False,
    client_msg_id: str | None = None,
    system_event: SystemEvent | None = None,
    attachment: StoredAttachment | None = None,
    settings: Settings,
) -> ChatMessage:
    """Give the message the conversation's next seq and store it; the caller holds the
    conversation's row lock. Raises `MessageRetried` (and takes no seq) when the same
    sender's `client_msg_id` is already used in the conversation."""
    async with session.begin_nested():
        seq = await session.scalar(
            update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(last_seq=Conversation.last_seq + 1)
            .returning(Conversation.last_seq)
            .execution_options(synchronize_session=False)
        )
        assert seq is not None
        message = ChatMessage(
            conversation_id=conversation.id,
            organization_id=conversation.organization_id,
            seq=seq,
            sender_id=sender.id if sender is not None else None,
            sender_role=role,
            type=type_,
            system_event=system_event,
            body=body,
            internal=internal,
            client_msg_id=client_msg_id,
            created_at=clock.now(),
        )
        if attachment is not None:
            message.attachment_key = attachment.key
            message.attachment_filename = attachment.filename
            message.attachment_content_type = attachment.content_type
            message.attachment_size = attachment.size
            message.attachment_width = attachment.width
            message.attachment_height = attachment.height
        # A unique violation rolls back this outer savepoint too, and with it the seq.
        await flush_or_conflict(session, {CLIENT_MSG_ID_CONSTRAINT: MessageRetried}, add=[message])
    set_committed_value(conversation, "last_seq", seq)
    _note_activity(conversation, message, settings)
    await session.flush()
    return message


def _note_activity(conversation: Conversation, message: ChatMessage, settings: Settings) -> None:
    at = message.created_at
    conversation.last_activity_at = at
    if message.internal:
        return
    conversation.last_public_seq = message.seq
    conversation.last_public_activity_at = at
    if message.type == ChatMessageType.system:
        return
    if message.sender_role == ChatParticipantRole.customer:
        conversation.last_customer_message_at = at
        # The customer is here and writing: no email notice of earlier replies is owed.
        conversation.notice_due_at = None
    elif message.sender_role == ChatParticipantRole.agent:
        conversation.last_agent_message_at = at
        if conversation.first_response_at is None:
            conversation.first_response_at = at
        if conversation.notice_due_at is None:
            # The email notice duty sends the replies still unread by then, in one email.
            conversation.notice_due_at = at + timedelta(
                seconds=settings.SUPPORT_EMAIL_NOTICE_DELAY_SECONDS
            )


async def write_system_message(
    session: AsyncSession,
    conversation: Conversation,
    *,
    actor: User | None,
    role: ChatParticipantRole | None,
    event: SystemEvent,
    body: str,
    settings: Settings,
) -> ChatMessage:
    """A `system` message (seen by both sides) announcing `event`, published after commit."""
    message = await append(
        session,
        conversation,
        sender=actor,
        role=role,
        type_=ChatMessageType.system,
        body=body,
        system_event=event,
        settings=settings,
    )
    names = {actor.id: actor.display_name} if actor is not None else {}
    live.message_created(session, conversation, views.message(message, names))
    return message
