"""What a live socket's user may hear: their own channel, and the inbox of every
organization where they are an agent."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.orgs.enums import Module, Permission
from townsquare.orgs.models import Membership, OrganizationModule
from townsquare.orgs.permissions import role_has
from townsquare.realtime.events import org_agents_channel, user_channel
from townsquare.support.models import Conversation


async def agent_organizations(session: AsyncSession, user_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """The organizations whose inbox `user_id` works: their role has `support:inbox` and the
    organization has the support module on."""
    return (await agent_organizations_of(session, [user_id])).get(user_id, frozenset())


async def agent_organizations_of(
    session: AsyncSession, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, frozenset[uuid.UUID]]:
    """`agent_organizations` of several users in one query (users with none left out)."""
    wanted = list(user_ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(Membership.user_id, Membership.organization_id, Membership.role)
        .join(
            OrganizationModule,
            (OrganizationModule.organization_id == Membership.organization_id)
            & (OrganizationModule.module == Module.support),
        )
        .where(Membership.user_id.in_(wanted))
    )
    found: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for member_id, org_id, role in rows:
        if role_has(role, Permission.support_inbox):
            found[member_id].add(org_id)
    return {member_id: frozenset(orgs) for member_id, orgs in found.items()}


def channels_for(user_id: uuid.UUID, agent_of: frozenset[uuid.UUID]) -> set[str]:
    """The user's own channel and the agents' channel of each organization in `agent_of`."""
    return {user_channel(user_id), *(org_agents_channel(org_id) for org_id in agent_of)}


@dataclass(frozen=True)
class ConversationParties:
    organization_id: uuid.UUID
    customer_id: uuid.UUID


async def conversation_parties(
    session: AsyncSession, conversation_id: uuid.UUID
) -> ConversationParties | None:
    """Whose conversation it is: its organization and its customer (None if it is gone)."""
    row = (
        await session.execute(
            select(Conversation.organization_id, Conversation.customer_id).where(
                Conversation.id == conversation_id
            )
        )
    ).first()
    return None if row is None else ConversationParties(row[0], row[1])
