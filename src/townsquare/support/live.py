"""The live events of the support chat, each sent only where its receivers may see it.

The organization's agents channel gets everything, internal notes included; the
customer's own channel gets what the customer can see through REST and nothing else:
never a note, never a seq or a time that only a note explains. Events leave after the
commit (`realtime.events.publish`); a client that missed some catches up by `after_seq`.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.realtime.events import org_agents_channel, publish, user_channel
from townsquare.support import schemas, views
from townsquare.support.models import Conversation

MESSAGE_CREATED = "message.created"
CONVERSATION_UPDATED = "conversation.updated"
CONVERSATION_READ = "conversation.read"


def message_created(
    session: AsyncSession, conversation: Conversation, message: schemas.Message
) -> None:
    data = message.model_dump(mode="json")
    publish(session, org_agents_channel(conversation.organization_id), MESSAGE_CREATED, data)
    if not message.internal:
        publish(session, user_channel(conversation.customer_id), MESSAGE_CREATED, data)


def conversation_updated(
    session: AsyncSession, conversation: Conversation, names: views.Names
) -> None:
    """The conversation's state: the agents' view to agents, the customer's to the customer."""
    for_agents = views.state(conversation, names, public=False).model_dump(mode="json")
    publish(
        session, org_agents_channel(conversation.organization_id), CONVERSATION_UPDATED, for_agents
    )
    for_customer = views.state(conversation, names, public=True).model_dump(mode="json")
    publish(session, user_channel(conversation.customer_id), CONVERSATION_UPDATED, for_customer)


def conversation_read(
    session: AsyncSession,
    conversation: Conversation,
    user_id: uuid.UUID,
    last_read_seq: int,
    *,
    public_seq: int | None,
) -> None:
    """Someone's read cursor moved. `public_seq` is the same cursor in the customer's terms
    (the newest public seq at or below it): None keeps the event off the customer's channel,
    which happens when an agent has read nothing the customer can see."""
    data = {
        "conversation_id": str(conversation.id),
        "user_id": str(user_id),
        "last_read_seq": last_read_seq,
    }
    publish(session, org_agents_channel(conversation.organization_id), CONVERSATION_READ, data)
    if public_seq is not None:
        publish(
            session,
            user_channel(conversation.customer_id),
            CONVERSATION_READ,
            {**data, "last_read_seq": public_seq},
        )
