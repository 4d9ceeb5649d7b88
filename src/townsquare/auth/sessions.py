"""Server-side sessions: cookie tokens, their SHA-256 digests, timeouts and CSRF tokens.

The cookie carries 256 random bits; the table keeps only their SHA-256. The CSRF token is
HMAC-SHA256(SECRET_KEY, session digest): bound to the session, rotated with it, and never
stored anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import IP_MAX, USER_AGENT_MAX, User, UserSession
from townsquare.config import Settings
from townsquare.kit import clock
from townsquare.kit.tokens import hash_token, new_token, tokens_equal


@dataclass(frozen=True)
class IssuedSession:
    """A new session with its secrets, which exist only here and in the client's cookies."""

    record: UserSession
    token: str
    csrf_token: str


def csrf_token_for(settings: Settings, token_hash: str) -> str:
    """The CSRF token of the session whose digest is `token_hash`."""
    mac = hmac.new(
        settings.SECRET_KEY.encode(), b"townsquare-csrf:" + token_hash.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_token_matches(settings: Settings, record: UserSession, candidate: str | None) -> bool:
    if not candidate:
        return False
    return tokens_equal(csrf_token_for(settings, record.token_hash), candidate)


def touch_interval(settings: Settings) -> timedelta:
    """How stale `last_seen_at` may get before a request records activity again."""
    return timedelta(seconds=max(1, min(settings.SESSION_IDLE_TIMEOUT_SECONDS // 20, 3600)))


def is_live(settings: Settings, record: UserSession, now: datetime | None = None) -> bool:
    """Within the absolute lifetime and not idle for longer than the idle timeout."""
    now = now or clock.now()
    idle_limit = record.last_seen_at + timedelta(seconds=settings.SESSION_IDLE_TIMEOUT_SECONDS)
    return now < record.expires_at and now < idle_limit


def live_at(settings: Settings, now: datetime) -> ColumnElement[bool]:
    """`is_live` as a SQL condition on `UserSession` rows."""
    idle_since = now - timedelta(seconds=settings.SESSION_IDLE_TIMEOUT_SECONDS)
    return and_(UserSession.expires_at > now, UserSession.last_seen_at > idle_since)


def needs_touch(settings: Settings, record: UserSession, now: datetime | None = None) -> bool:
    now = now or clock.now()
    return now - record.last_seen_at >= touch_interval(settings)


async def start_session(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    user_agent: str | None = None,
    ip: str | None = None,
) -> IssuedSession:
    """Open a new session for `user`; the caller sets its cookies."""
    token = new_token(32)
    now = clock.now()
    record = UserSession(
        user_id=user.id,
        token_hash=hash_token(token),
        user_agent=(user_agent or None) and user_agent[:USER_AGENT_MAX],
        ip=(ip or None) and ip[:IP_MAX],
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS),
    )
    session.add(record)
    await session.flush()
    return IssuedSession(
        record=record, token=token, csrf_token=csrf_token_for(settings, record.token_hash)
    )


# Built once: every authenticated request runs it (building a statement costs more than
# its parameters do).
_SESSION_BY_TOKEN_HASH = (
    select(UserSession, User)
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("token_hash"))
)


async def find_live_session(
    session: AsyncSession, settings: Settings, token: str
) -> tuple[UserSession, User] | None:
    """The live session of a cookie token and its active user, or None."""
    if not token or len(token) > 256:
        return None
    row = (await session.execute(_SESSION_BY_TOKEN_HASH, {"token_hash": hash_token(token)})).first()
    if row is None:
        return None
    record, user = row
    if not user.is_active or not is_live(settings, record):
        return None
    return record, user


async def touch_session(session: AsyncSession, session_id: uuid.UUID) -> None:
    """Record activity on a session (moves its idle deadline)."""
    await session.execute(
        update(UserSession)
        .where(UserSession.id == session_id)
        .values(last_seen_at=clock.now())
        .execution_options(synchronize_session=False)
    )


async def end_session_by_token(session: AsyncSession, token: str) -> None:
    """End the session of a cookie token, if there is one."""
    await session.execute(delete(UserSession).where(UserSession.token_hash == hash_token(token)))


async def end_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, keep: uuid.UUID | None = None
) -> int:
    """End every session of the user (except `keep`); returns how many ended."""
    statement = delete(UserSession).where(UserSession.user_id == user_id)
    if keep is not None:
        statement = statement.where(UserSession.id != keep)
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)
