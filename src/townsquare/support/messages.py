"""Sending messages and reading a conversation's messages by seq."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.config import Settings
from townsquare.storage.base import Storage
from townsquare.support import live, reads, schemas, status, views
from townsquare.support.access import get_visible
from townsquare.support.context import SupportCaller
from townsquare.support.enums import ChatMessageType, ChatParticipantRole, ConversationStatus
from townsquare.support.errors import AgentsOnly, ConversationClosed
from townsquare.support.models import ChatMessage, Conversation
from townsquare.support.timeline import StoredAttachment, append


async def send_message(
    session: AsyncSession,
    caller: SupportCaller,
    conversation_id: uuid.UUID,
    *,
    body: str,
    internal: bool,
    client_msg_id: str | None,
    storage: Storage,
    settings: Settings,
) -> tuple[schemas.Message, bool]:
    """Append the caller's message; returns it and whether it is new.

    A `client_msg_id` this sender already used in the conversation answers the original
    (also when the two requests race). Only agents write internal notes (403
    `agents_only`); nobody writes to a closed conversation (409 `conversation_closed`); a
    customer's message on a resolved one reopens it first, with a system message."""
    conversation = await get_visible(session, caller, conversation_id, for_update=True)
    if internal and caller.role_in(conversation) != ChatParticipantRole.agent:
        raise AgentsOnly()
    return await post(
        session,
        caller,
        conversation,
        body=body,
        internal=internal,
        client_msg_id=client_msg_id,
        storage=storage,
        settings=settings,
    )


async def post(
    session: AsyncSession,
    caller: SupportCaller,
    conversation: Conversation,
    *,
    body: str,
    internal: bool = False,
    client_msg_id: str | None,
    attachment: StoredAttachment | None = None,
    storage: Storage,
    settings: Settings,
) -> tuple[schemas.Message, bool]:
    """Write the caller's message (a text, or an `attachment` message when `attachment`
    is given) to `conversation`, whose row lock the caller holds: the rules of
    `send_message` from the retry check on."""
    role = caller.role_in(conversation)
    if client_msg_id is not None:
        original = await sent_with(session, conversation, caller, client_msg_id)
        if original is not None:
            return await _present(session, original, storage, settings), False
    if conversation.status == ConversationStatus.closed:
        raise ConversationClosed()
    if role == ChatParticipantRole.customer and conversation.status == ConversationStatus.resolved:
        await status.reopen_for_customer(session, caller, conversation, settings=settings)
    # Under the conversation's row lock the check above is final: no other request of
    # this conversation inserts a message until this one ends.
    message = await append(
        session,
        conversation,
        sender=caller.user,
        role=role,
        type_=ChatMessageType.text if attachment is None else ChatMessageType.attachment,
        body=body,
        internal=internal,
        client_msg_id=client_msg_id,
        attachment=attachment,
        settings=settings,
    )
    # Writing a message means having read up to it.
    await reads.advance(session, conversation, caller.user.id, role, message.seq)
    urls = await views.sign_attachments([message], storage=storage, settings=settings)
    out = views.message(message, {caller.user.id: caller.user.display_name}, urls)
    live.message_created(session, conversation, out)
    return out, True


async def sent_with(
    session: AsyncSession, conversation: Conversation, caller: SupportCaller, client_msg_id: str
) -> ChatMessage | None:
    """The caller's message in `conversation` with this `client_msg_id`, if any."""
    return await session.scalar(
        _SENT_WITH,
        {"conversation_id": conversation.id, "sender_id": caller.user.id, "cmid": client_msg_id},
    )


_SENT_WITH = select(ChatMessage).where(
    ChatMessage.conversation_id == bindparam("conversation_id"),
    ChatMessage.sender_id == bindparam("sender_id"),
    ChatMessage.client_msg_id == bindparam("cmid"),
)


async def _present(
    session: AsyncSession, message: ChatMessage, storage: Storage, settings: Settings
) -> schemas.Message:
    return (await views.present_messages(session, [message], storage=storage, settings=settings))[0]


async def list_messages(
    session: AsyncSession,
    caller: SupportCaller,
    conversation_id: uuid.UUID,
    *,
    after_seq: int | None,
    before_seq: int | None,
    limit: int,
    storage: Storage,
    settings: Settings,
) -> schemas.MessagePage:
    """Messages in ascending seq order; customers never get internal notes.

    With `after_seq`: the first `limit` after it (below `before_seq` if given). With only
    `before_seq`: the `limit` just before it. With neither: the newest `limit`.
    `next_cursor` is the seq to pass on in the same direction, or None at the end."""
    conversation = await get_visible(session, caller, conversation_id)
    statement = select(ChatMessage).where(ChatMessage.conversation_id == conversation.id)
    if not caller.sees_notes(conversation):
        statement = statement.where(ChatMessage.internal.is_(False))
    if before_seq is not None:
        statement = statement.where(ChatMessage.seq < before_seq)
    forwards = after_seq is not None
    if after_seq is not None:
        statement = statement.where(ChatMessage.seq > after_seq)
    rows = await _page(session, statement, forwards=forwards, limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    if not forwards:
        rows.reverse()
    next_cursor = None
    if more and rows:
        next_cursor = rows[-1].seq if forwards else rows[0].seq
    items = await views.present_messages(session, rows, storage=storage, settings=settings)
    return schemas.MessagePage(items=items, next_cursor=next_cursor)


async def _page(
    session: AsyncSession, statement: Select[ChatMessage], *, forwards: bool, limit: int
) -> list[ChatMessage]:
    order = ChatMessage.seq.asc() if forwards else ChatMessage.seq.desc()
    return list((await session.scalars(statement.order_by(order).limit(limit + 1))).all())
