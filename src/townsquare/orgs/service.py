"""Organizations: business rules and all their SQL."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.orgs.models import AuditLogEntry


async def record_audit(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    action: str,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """Append an audit entry in the caller's transaction (`action` like `article.published`)."""
    entry = AuditLogEntry(
        organization_id=organization_id,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        data=data or {},
    )
    session.add(entry)
    await session.flush()
    return entry
