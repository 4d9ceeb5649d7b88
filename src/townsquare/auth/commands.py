"""What `townsquare admin ...` does: grant or take away staff rights by email."""

from __future__ import annotations

from townsquare.auth import service
from townsquare.config import Settings
from townsquare.db import Database, SessionSource, transaction


class NoSuchAccount(LookupError):
    """No account has this email address."""


async def set_staff_by_email(db: SessionSource, email: str, is_staff: bool) -> str:
    """Promote (or demote) the account with `email`; returns its stored email."""
    async with transaction(db) as session:
        user = await service.get_user_by_email(session, email)
        if user is None:
            raise NoSuchAccount(email)
        await service.set_staff(session, user, is_staff)
        return user.email


async def set_staff(settings: Settings, email: str, is_staff: bool) -> str:
    database = Database(settings)
    try:
        return await set_staff_by_email(database, email, is_staff)
    finally:
        await database.dispose()
