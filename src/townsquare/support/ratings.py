"""Satisfaction: the customer rates their resolved conversation, once."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.kit import clock
from townsquare.support import conversations, live, schemas, views
from townsquare.support.access import get_visible
from townsquare.support.context import SupportCaller
from townsquare.support.enums import ChatParticipantRole, ConversationStatus
from townsquare.support.errors import AlreadyRated, ConversationNotResolved, OnlyTheCustomerRates


async def rate(
    session: AsyncSession,
    caller: SupportCaller,
    conversation_id: uuid.UUID,
    *,
    rating: int,
    comment: str | None,
) -> schemas.Conversation:
    """Record the customer's rating (1-5) and comment: only the customer (403), only while
    resolved (409 `conversation_not_resolved`), only once (409 `already_rated`)."""
    conversation = await get_visible(session, caller, conversation_id, for_update=True)
    if caller.role_in(conversation) != ChatParticipantRole.customer:
        raise OnlyTheCustomerRates()
    if conversation.rating is not None:
        raise AlreadyRated()
    if conversation.status != ConversationStatus.resolved:
        raise ConversationNotResolved()
    conversation.rating = rating
    conversation.rating_comment = comment or None
    conversation.rated_at = clock.now()
    await session.flush()
    live.conversation_updated(
        session, conversation, await views.conversation_names(session, [conversation])
    )
    return await conversations.present(session, caller, conversation)
