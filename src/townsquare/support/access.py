"""Finding a conversation as the caller may see it.

Agents of the organization see all of its conversations; anybody else sees only the
ones they opened. Any other id, another organization's included, is simply not found.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.support.context import SupportCaller
from townsquare.support.errors import ConversationNotFound
from townsquare.support.models import Conversation


async def get_visible(
    session: AsyncSession,
    caller: SupportCaller,
    conversation_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Conversation:
    """The conversation if the caller may see it, or 404 `conversation_not_found`.

    `for_update` takes the conversation's row lock (PostgreSQL; SQLite's write
    transaction is exclusive already): whoever writes to the conversation holds it."""
    statement = select(Conversation).where(
        Conversation.id == conversation_id, Conversation.organization_id == caller.org.id
    )
    if not caller.is_agent:
        statement = statement.where(Conversation.customer_id == caller.user.id)
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    conversation = await session.scalar(statement)
    if conversation is None:
        raise ConversationNotFound()
    return conversation
