"""An agent who leaves the organization, or whose role no longer works the inbox, keeps
no conversations: they return to the unassigned inbox (see `status.unassign_departed`)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.config import get_settings
from townsquare.orgs.context import OrgContext
from townsquare.orgs.departures import on_membership_changed
from townsquare.orgs.enums import MemberRole, Permission
from townsquare.orgs.permissions import role_has
from townsquare.support import status


@on_membership_changed
async def unassign_when_gone(
    session: AsyncSession, ctx: OrgContext, user_id: uuid.UUID, role: MemberRole | None
) -> None:
    if role is not None and role_has(role, Permission.support_inbox):
        return
    # System messages take no setting that differs between apps; the process's will do.
    await status.unassign_departed(
        session, ctx, user_id, left=role is None, settings=get_settings()
    )
