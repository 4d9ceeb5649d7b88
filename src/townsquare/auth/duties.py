"""Background duties of identity: forget sessions and tokens that can no longer be used."""

from __future__ import annotations

from townsquare.auth import service
from townsquare.db import transaction
from townsquare.worker.registry import DutyContext, duty


@duty("auth.delete_expired_sessions", every_seconds=3600)
async def delete_expired_sessions(ctx: DutyContext) -> int:
    """Delete sessions past their absolute or idle deadline."""
    async with transaction(ctx.db) as session:
        return await service.delete_expired_sessions(session, ctx.settings)


@duty("auth.delete_expired_tokens", every_seconds=3600)
async def delete_expired_tokens(ctx: DutyContext) -> int:
    """Delete verification and password-reset tokens past their expiry."""
    async with transaction(ctx.db) as session:
        return await service.delete_expired_tokens(session)
