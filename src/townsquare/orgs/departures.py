"""Someone stops being a member, or keeps a role that no longer includes some work: the
domains that hand work to members (the support inbox's assignments) register a handler
here, so that organizations need not know them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import MemberRole

MembershipChanged = Callable[
    [AsyncSession, OrgContext, uuid.UUID, MemberRole | None], Awaitable[None]
]
"""`(session, ctx of who made the change, the member's user id, their role now or None
when they left)`, called in the transaction of the change."""

_handlers: list[MembershipChanged] = []


def on_membership_changed(handler: MembershipChanged) -> MembershipChanged:
    """Register `handler` (a decorator); registering it twice has no effect."""
    if handler not in _handlers:
        _handlers.append(handler)
    return handler


async def membership_changed(
    session: AsyncSession, ctx: OrgContext, user_id: uuid.UUID, role: MemberRole | None
) -> None:
    for handler in _handlers:
        await handler(session, ctx, user_id, role)
