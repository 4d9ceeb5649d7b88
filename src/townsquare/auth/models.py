"""Accounts, their server-side sessions and their one-time emailed tokens.

No table holds a usable secret: sessions and tokens are stored as SHA-256 digests, the
CSRF token is derived from the session digest with the server's secret key.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.auth.enums import TokenPurpose
from townsquare.db import Model
from townsquare.kit import clock

EMAIL_MAX = 254
DISPLAY_NAME_MAX = 100
TIMEZONE_MAX = 64
AVATAR_URL_MAX = 2048
USER_AGENT_MAX = 512
IP_MAX = 45
TOKEN_HASH_LENGTH = 64


class User(Model):
    """A person's account. `email` is stored lower-case, so uniqueness ignores case."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(EMAIL_MAX), unique=True)
    display_name: Mapped[str] = mapped_column(String(DISPLAY_NAME_MAX))
    timezone: Mapped[str] = mapped_column(String(TIMEZONE_MAX))
    avatar_url: Mapped[str | None] = mapped_column(String(AVATAR_URL_MAX))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    email_verified_at: Mapped[datetime | None] = mapped_column()
    last_login_at: Mapped[datetime | None] = mapped_column()

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class UserSession(Model):
    """A signed-in browser or client. Only the SHA-256 of its cookie token is kept."""

    __tablename__ = "user_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX))
    ip: Mapped[str | None] = mapped_column(String(IP_MAX))
    last_seen_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    """Absolute end of the session, whatever its activity."""


class UserToken(Model):
    """A one-time token sent by email (verification, password reset), stored hashed."""

    __tablename__ = "user_tokens"
    __table_args__ = (Index(None, "user_id", "purpose"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[TokenPurpose] = mapped_column(
        Enum(TokenPurpose, name="token_purpose", native_enum=False, length=32)
    )
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)
    email: Mapped[str] = mapped_column(String(EMAIL_MAX))
    """The address the token was sent to; it only works while the account still has it."""
    expires_at: Mapped[datetime] = mapped_column(index=True)
