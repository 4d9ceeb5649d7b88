"""The audit log: an append-only record of who did what in an organization."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.kit.pagination import PageParams, paginate
from townsquare.orgs import schemas
from townsquare.orgs.context import OrgContext
from townsquare.orgs.models import AuditLogEntry

AuditTarget = tuple[str, uuid.UUID | str]
"""What an entry is about: `("article", article.id)`."""


async def record(
    session: AsyncSession,
    ctx: OrgContext,
    action: str,
    *,
    target: AuditTarget | None = None,
    data: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """Append what `ctx.user` did in `ctx.org` (`action` like `article.published`), in the
    caller's transaction."""
    return await _append(session, ctx.org.id, ctx.user.id, action, target, data)


async def record_unattended(
    session: AsyncSession,
    organization_id: uuid.UUID,
    action: str,
    *,
    target: AuditTarget | None = None,
    data: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """Append what Townsquare itself did (a duty, such as scheduled publishing): no actor."""
    return await _append(session, organization_id, None, action, target, data)


async def _append(
    session: AsyncSession,
    organization_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    action: str,
    target: AuditTarget | None,
    data: dict[str, Any] | None,
) -> AuditLogEntry:
    entry = AuditLogEntry(
        organization_id=organization_id,
        actor_id=actor_id,
        action=action,
        target_type=target[0] if target is not None else None,
        target_id=str(target[1]) if target is not None else None,
        data=data or {},
    )
    session.add(entry)
    await session.flush()
    return entry


async def list_entries(
    session: AsyncSession, ctx: OrgContext, params: PageParams, *, action: str | None = None
) -> tuple[list[schemas.AuditLogEntry], int]:
    """The organization's entries, newest first, with each actor's display name."""
    statement = (
        select(AuditLogEntry, User.display_name)
        .outerjoin(User, User.id == AuditLogEntry.actor_id)
        .where(AuditLogEntry.organization_id == ctx.org.id)
        .order_by(AuditLogEntry.created_at.desc(), AuditLogEntry.id.desc())
    )
    if action:
        statement = statement.where(AuditLogEntry.action == action)
    rows, total = await paginate(session, statement, params)
    items = [
        schemas.AuditLogEntry(
            id=entry.id,
            action=entry.action,
            actor=(
                schemas.AuditActor(id=entry.actor_id, display_name=display_name or "")
                if entry.actor_id is not None
                else None
            ),
            target_type=entry.target_type,
            target_id=entry.target_id,
            data=entry.data,
            created_at=entry.created_at,
        )
        for entry, display_name in rows
    ]
    return items, total
