"""Read cursors: each person's own `last_read_seq` in a conversation, and unread counts.

Everybody has their own cursor (the customer, and every agent who reads or writes), so
one agent reading never marks a conversation read for another. A cursor only moves
forward. Unread counts are messages after the cursor that somebody else wrote; a
customer's never count internal notes.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, Integer, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from townsquare.db import flush_or_conflict
from townsquare.support import live, schemas
from townsquare.support.access import get_visible
from townsquare.support.context import SupportCaller
from townsquare.support.enums import ChatParticipantRole
from townsquare.support.models import ChatMessage, ChatParticipant, Conversation

PARTICIPANT_CONSTRAINT = "uq_chat_participants_conversation_id_user_id"


class _AlreadyParticipant(Exception):
    """A concurrent request of the same person added their participant row first."""


async def cursor_of(session: AsyncSession, conversation_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """The person's read cursor (0 when they never read the conversation)."""
    found = await session.scalar(
        select(ChatParticipant.last_read_seq).where(
            ChatParticipant.conversation_id == conversation_id, ChatParticipant.user_id == user_id
        )
    )
    return found or 0


def unread_condition(
    conversation_id: InstrumentedAttribute[uuid.UUID] | uuid.UUID,
    user_id: uuid.UUID,
    after_seq: ColumnElement[int] | int,
    *,
    public: ColumnElement[bool] | bool,
) -> list[ColumnElement[bool]]:
    """Messages of the conversation after `after_seq` written by someone else; with
    `public` (true, or a per-row condition in a list), internal notes left out."""
    conditions = [
        ChatMessage.conversation_id == conversation_id,
        ChatMessage.seq > after_seq,
        ChatMessage.sender_id.is_distinct_from(user_id),
    ]
    if public is True:
        conditions.append(ChatMessage.internal.is_(False))
    elif public is not False:
        conditions.append(~(public & ChatMessage.internal.is_(True)))
    return conditions


async def unread_count(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    after_seq: int,
    public: bool,
) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(ChatMessage)
        .where(*unread_condition(conversation_id, user_id, after_seq, public=public))
    )
    return int(count or 0)


# Built once: every message sent moves its sender's cursor.
_SEQ = bindparam("seq", type_=Integer)
_ADVANCE = (
    update(ChatParticipant)
    .where(
        ChatParticipant.conversation_id == bindparam("b_conversation_id"),
        ChatParticipant.user_id == bindparam("b_user_id"),
    )
    .values(
        last_read_seq=case(
            (ChatParticipant.last_read_seq < _SEQ, _SEQ),
            else_=ChatParticipant.last_read_seq,
        )
    )
    .returning(ChatParticipant.last_read_seq)
    .execution_options(synchronize_session=False)
)


async def advance(
    session: AsyncSession,
    conversation: Conversation,
    user_id: uuid.UUID,
    role: ChatParticipantRole,
    seq: int,
) -> int:
    """Move the person's cursor forward to `seq` (never back), adding their participant
    row when they have none; returns the cursor. One statement when the row exists."""
    moved = await session.scalar(
        _ADVANCE, {"b_conversation_id": conversation.id, "b_user_id": user_id, "seq": seq}
    )
    if moved is not None:
        return moved
    participant = ChatParticipant(
        conversation_id=conversation.id, user_id=user_id, role=role, last_read_seq=seq
    )
    try:
        await flush_or_conflict(
            session, {PARTICIPANT_CONSTRAINT: _AlreadyParticipant}, add=[participant]
        )
    except _AlreadyParticipant:
        # Their row came in a concurrent request: move it now that it exists.
        return await advance(session, conversation, user_id, role, seq)
    return seq


async def _public_seq_at_or_below(
    session: AsyncSession, conversation: Conversation, seq: int
) -> int | None:
    """The newest seq a customer can see at or below `seq` (None: there is none)."""
    if conversation.last_public_seq <= seq:
        return conversation.last_public_seq or None
    found = await session.scalar(
        select(func.max(ChatMessage.seq)).where(
            ChatMessage.conversation_id == conversation.id,
            ChatMessage.seq <= seq,
            ChatMessage.internal.is_(False),
        )
    )
    return found


async def mark_read(
    session: AsyncSession, caller: SupportCaller, conversation_id: uuid.UUID, *, seq: int
) -> schemas.ReadCursor:
    """Move the caller's own cursor forward to `seq`, lowered to the newest seq they can
    see (a customer's stops at the newest public message), and tell both sides."""
    conversation = await get_visible(session, caller, conversation_id)
    role = caller.role_in(conversation)
    public = not caller.sees_notes(conversation)
    visible = conversation.last_public_seq if public else conversation.last_seq
    before = await cursor_of(session, conversation.id, caller.user.id)
    cursor = await advance(session, conversation, caller.user.id, role, min(seq, visible))
    moved = cursor > before
    if role == ChatParticipantRole.customer and cursor >= conversation.last_public_seq:
        # Everything is read: no email notice is owed any more.
        conversation.notice_due_at = None
        await session.flush()
    if moved:
        public_seq = (
            cursor if public else await _public_seq_at_or_below(session, conversation, cursor)
        )
        live.conversation_read(session, conversation, caller.user.id, cursor, public_seq=public_seq)
    unread = await unread_count(
        session, conversation.id, caller.user.id, after_seq=cursor, public=public
    )
    return schemas.ReadCursor(
        conversation_id=conversation.id,
        user_id=caller.user.id,
        last_read_seq=cursor,
        unread_count=unread,
    )
