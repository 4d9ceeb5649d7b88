"""A conversation's one sequence of messages: how a message gets its seq, and what it
changes on its conversation.

The seq comes from one atomic `UPDATE conversations SET last_seq = last_seq + 1 ...
RETURNING last_seq`, which holds the conversation's row until the commit (PostgreSQL),
or runs inside the one write transaction SQLite allows at a time. So seq N+1 can never
commit before seq N: every reader sees one order with no gaps. Internal notes take seqs
in the same sequence; customers see the same order with those seqs missing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.kit import clock
from townsquare.support import live, views
from townsquare.support.enums import ChatMessageType, ChatParticipantRole, SystemEvent
from townsquare.support.models import ChatMessage, Conversation


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
    """Give the message the conversation's next seq and store it. The caller holds the
    conversation's row lock and has already answered a retried `client_msg_id` (under
    that lock no other request of the conversation can insert one meanwhile).

    Two statements: the conversation's `UPDATE` takes the seq and records the activity at
    once, and the message is inserted without the ORM's unit of work (this is the chat's
    hot path); the returned message and `conversation` hold what was written."""
    now = clock.now()
    message = ChatMessage(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        organization_id=conversation.organization_id,
        sender_id=sender.id if sender is not None else None,
        sender_role=role,
        type=type_,
        system_event=system_event,
        body=body,
        internal=internal,
        client_msg_id=client_msg_id,
        created_at=now,
        updated_at=now,
    )
    if attachment is not None:
        message.attachment_key = attachment.key
        message.attachment_filename = attachment.filename
        message.attachment_content_type = attachment.content_type
        message.attachment_size = attachment.size
        message.attachment_width = attachment.width
        message.attachment_height = attachment.height
    activity = _activity(conversation, message, settings)
    next_seq = Conversation.last_seq + 1
    values: dict[str, Any] = {"last_seq": next_seq, "updated_at": now, **activity}
    if not internal:
        values["last_public_seq"] = next_seq
    seq = await session.scalar(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(values)
        .returning(Conversation.last_seq)
        .execution_options(synchronize_session=False)
    )
    assert seq is not None
    message.seq = seq
    await session.execute(insert(ChatMessage).values(_columns(message)))
    for name, value in activity.items():
        set_committed_value(conversation, name, value)
    set_committed_value(conversation, "last_seq", seq)
    set_committed_value(conversation, "updated_at", now)
    if not internal:
        set_committed_value(conversation, "last_public_seq", seq)
    return message


_MESSAGE_COLUMNS = tuple(column.key for column in ChatMessage.__table__.columns)


def _columns(message: ChatMessage) -> dict[str, Any]:
    return {name: getattr(message, name) for name in _MESSAGE_COLUMNS}


def _activity(
    conversation: Conversation, message: ChatMessage, settings: Settings
) -> dict[str, Any]:
    """What the message changes on its conversation besides the seq."""
    at = message.created_at
    changes: dict[str, Any] = {"last_activity_at": at}
    if message.internal:
        return changes
    changes["last_public_activity_at"] = at
    if message.type == ChatMessageType.system:
        return changes
    if message.sender_role == ChatParticipantRole.customer:
        changes["last_customer_message_at"] = at
        # The customer is here and writing: no email notice of earlier replies is owed.
        changes["notice_due_at"] = None
    elif message.sender_role == ChatParticipantRole.agent:
        changes["last_agent_message_at"] = at
        if conversation.first_response_at is None:
            changes["first_response_at"] = at
        if conversation.notice_due_at is None:
            # The email notice duty sends the replies still unread by then, in one email.
            changes["notice_due_at"] = at + timedelta(
                seconds=settings.SUPPORT_EMAIL_NOTICE_DELAY_SECONDS
            )
    return changes


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
