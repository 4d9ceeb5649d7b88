"""Finding a conversation as the caller may see it.

Agents of the organization see all of its conversations; anybody else sees only the
ones they opened. Any other id, another organization's included, is simply not found.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.support.context import SupportCaller
from townsquare.support.errors import ConversationNotFound
from townsquare.support.models import Conversation


def _visible(*, agent: bool, for_update: bool) -> Select[Conversation]:
    statement = select(Conversation).where(
        Conversation.id == bindparam("id"), Conversation.organization_id == bindparam("org_id")
    )
    if not agent:
        statement = statement.where(Conversation.customer_id == bindparam("user_id"))
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return statement


# Built once (the chat's hot path): agent or customer, with or without the row lock.
_VISIBLE = {
    (agent, for_update): _visible(agent=agent, for_update=for_update)
    for agent in (True, False)
    for for_update in (True, False)
}


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
    statement = _VISIBLE[(caller.is_agent, for_update)]
    conversation = await session.scalar(
        statement, {"id": conversation_id, "org_id": caller.org.id, "user_id": caller.user.id}
    )
    if conversation is None:
        raise ConversationNotFound()
    return conversation
