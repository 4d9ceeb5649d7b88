"""Opening a conversation with its first message, and presenting one to a reader."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.config import Settings
from townsquare.db import flush_or_conflict
from townsquare.kit import clock
from townsquare.support import live, reads, schemas, views
from townsquare.support.access import get_visible
from townsquare.support.context import SupportCaller
from townsquare.support.enums import ChatMessageType, ChatParticipantRole, ConversationStatus
from townsquare.support.errors import EmailNotVerified
from townsquare.support.models import ChatMessage, ChatParticipant, Conversation

OPEN_RETRY_CONSTRAINT = "uq_conversations_organization_id_customer_id_client_msg_id"


class _OpenRetried(Exception):
    """The same customer's open with this `client_msg_id` committed first."""


async def open_conversation(
    session: AsyncSession,
    caller: SupportCaller,
    *,
    subject: str,
    body: str,
    client_msg_id: str | None,
    settings: Settings,
) -> tuple[schemas.Conversation, bool]:
    """Open a conversation with its first message (seq 1), the caller as its customer.
    Returns it and whether it is new: a retry with the same `client_msg_id` gets the
    conversation the first attempt opened, also when both race."""
    if not caller.user.email_verified:
        raise EmailNotVerified()
    if client_msg_id is not None:
        existing = await _opened_with(session, caller, client_msg_id)
        if existing is not None:
            return await present(session, caller, existing), False
    now = clock.now()
    conversation = Conversation(
        organization_id=caller.org.id,
        customer_id=caller.user.id,
        subject=subject,
        status=ConversationStatus.open,
        client_msg_id=client_msg_id,
        # Nobody else can see the new row before the commit, so seq 1 needs no lock.
        last_seq=1,
        last_public_seq=1,
        last_activity_at=now,
        last_public_activity_at=now,
        last_customer_message_at=now,
        created_at=now,
    )
    try:
        await flush_or_conflict(session, {OPEN_RETRY_CONSTRAINT: _OpenRetried}, add=[conversation])
    except _OpenRetried:
        winner = await _opened_with(session, caller, client_msg_id or "")
        if winner is None:
            raise
        return await present(session, caller, winner), False
    message = ChatMessage(
        conversation_id=conversation.id,
        organization_id=caller.org.id,
        seq=1,
        sender_id=caller.user.id,
        sender_role=ChatParticipantRole.customer,
        type=ChatMessageType.text,
        body=body,
        client_msg_id=client_msg_id,
        created_at=now,
    )
    participant = ChatParticipant(
        conversation_id=conversation.id,
        user_id=caller.user.id,
        role=ChatParticipantRole.customer,
        last_read_seq=1,
    )
    session.add_all([message, participant])
    await session.flush()
    names = await views.conversation_names(session, [conversation])
    live.conversation_updated(session, conversation, names)
    live.message_created(session, conversation, views.message(message, names))
    return views.conversation(
        conversation, names, public=True, last_read_seq=1, unread_count=0
    ), True


async def _opened_with(
    session: AsyncSession, caller: SupportCaller, client_msg_id: str
) -> Conversation | None:
    return await session.scalar(
        select(Conversation).where(
            Conversation.organization_id == caller.org.id,
            Conversation.customer_id == caller.user.id,
            Conversation.client_msg_id == client_msg_id,
        )
    )


async def present(
    session: AsyncSession, caller: SupportCaller, conversation: Conversation
) -> schemas.Conversation:
    """The conversation as the caller sees it, with their read cursor and unread count."""
    public = not caller.sees_notes(conversation)
    cursor = await reads.cursor_of(session, conversation.id, caller.user.id)
    unread = await reads.unread_count(
        session, conversation.id, caller.user.id, after_seq=cursor, public=public
    )
    names = await views.conversation_names(session, [conversation])
    return views.conversation(
        conversation, names, public=public, last_read_seq=cursor, unread_count=unread
    )


async def get_conversation(
    session: AsyncSession, caller: SupportCaller, conversation_id: uuid.UUID
) -> schemas.Conversation:
    """One conversation the caller may see, or 404 `conversation_not_found`."""
    return await present(session, caller, await get_visible(session, caller, conversation_id))
