"""The secret of a person's calendar feed (`GET /me/shifts.ics?token=`).

Calendar apps cannot send a session cookie, so the feed's URL carries a random token. Only
its SHA-256 is kept, one per person: issuing a new one replaces the row's hash, which
revokes the old URL at once.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.auth.models import TOKEN_HASH_LENGTH
from townsquare.db import Model
from townsquare.kit.tokens import hash_token, new_token


class CalendarToken(Model):
    __tablename__ = "calendar_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)


async def issue(session: AsyncSession, user_id: uuid.UUID) -> str:
    """A new feed token for `user_id` (returned once, in clear); any earlier one stops
    working in the same transaction. The person's row is locked, so two concurrent
    rotations leave exactly one valid token."""
    token = new_token()
    row = await session.scalar(
        select(CalendarToken).where(CalendarToken.user_id == user_id).with_for_update()
    )
    if row is None:
        session.add(CalendarToken(user_id=user_id, token_hash=hash_token(token)))
    else:
        row.token_hash = hash_token(token)
    await session.flush()
    return token


async def owner_of(session: AsyncSession, token: str) -> uuid.UUID | None:
    """The person whose current feed token `token` is, or None (unknown or revoked)."""
    if not token:
        return None
    user_id: uuid.UUID | None = await session.scalar(
        select(CalendarToken.user_id).where(CalendarToken.token_hash == hash_token(token))
    )
    return user_id
