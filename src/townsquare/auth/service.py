"""Identity: accounts, passwords, sign-in, emailed tokens and staff administration.

Services flush and never commit; the request's transaction commits once. Password hashing
runs in worker threads (see `passwords`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth import passwords
from townsquare.auth import sessions as auth_sessions
from townsquare.auth.enums import TokenPurpose
from townsquare.auth.errors import (
    AlreadyVerified,
    CannotChangeOwnAccount,
    EmailNotVerified,
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    SessionNotFound,
    UserNotFound,
    WrongCurrentPassword,
)
from townsquare.auth.models import User, UserSession, UserToken
from townsquare.auth.sessions import IssuedSession
from townsquare.config import Settings
from townsquare.db import contains_pattern, flush_or_conflict
from townsquare.errors import field_error
from townsquare.kit import clock
from townsquare.kit.fields import normalize_email
from townsquare.kit.pagination import PageParams, paginate
from townsquare.kit.tokens import hash_token, new_token


def _check_new_password(password: str, email: str, field: str) -> None:
    problem = passwords.password_problem(password, email=email)
    if problem is not None:
        raise field_error(field, problem, "password_not_allowed")


# --- accounts ----------------------------------------------------------------------------


def require_verified_email(user: User) -> None:
    """403 `email_not_verified` unless the user confirmed their address: needed to write to
    an organization or to make Townsquare email someone else."""
    if user.email_verified_at is None:
        raise EmailNotVerified()


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == normalize_email(email)))


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def register(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str,
    display_name: str,
    timezone: str | None = None,
) -> None:
    """Create an account (never staff) and send it a verification email. For an address
    that has an account, email its owner instead: the caller learns nothing either way,
    and both paths cost one password hash."""
    email = normalize_email(email)
    _check_new_password(password, email, "password")
    existing = await get_user_by_email(session, email)
    if existing is not None:
        await passwords.burn_verification(settings, password)
        await _send_account_exists(session, settings, existing)
        return
    user = User(
        email=email,
        display_name=display_name,
        timezone=timezone or settings.DEFAULT_TIMEZONE,
        password_hash=await passwords.hash_password(settings, password),
        is_staff=False,
        is_active=True,
    )
    try:
        await flush_or_conflict(session, {"uq_users_email": EmailTaken}, add=[user])
    except EmailTaken:
        # A concurrent registration of the same address won; it sends the emails.
        return
    await send_verification(session, settings, user)


async def _send_account_exists(session: AsyncSession, settings: Settings, user: User) -> None:
    from townsquare.email import service as email_service

    await email_service.enqueue_email(
        session,
        to=user.email,
        template="account_exists",
        context={"display_name": user.display_name, "public_url": settings.PUBLIC_URL},
        settings=settings,
    )


async def authenticate(
    session: AsyncSession, settings: Settings, *, email: str, password: str
) -> User:
    """The active user with this email and password; `InvalidCredentials` otherwise, with
    the same work done whether or not the account exists. Rehashes outdated hashes."""
    user = await get_user_by_email(session, email)
    if user is None:
        await passwords.burn_verification(settings, password)
        raise InvalidCredentials()
    if not await passwords.verify_password(settings, user.password_hash, password):
        raise InvalidCredentials()
    if not user.is_active:
        raise InvalidCredentials()
    if passwords.needs_rehash(settings, user.password_hash):
        user.password_hash = await passwords.hash_password(settings, password)
    user.last_login_at = clock.now()
    await session.flush()
    return user


async def sign_in(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    previous_token: str | None,
    user_agent: str | None,
    ip: str | None,
) -> IssuedSession:
    """A fresh session for `user`; the session the client held before (if any) ends."""
    if previous_token:
        await auth_sessions.end_session_by_token(session, previous_token)
    return await auth_sessions.start_session(session, settings, user, user_agent=user_agent, ip=ip)


async def sign_out(session: AsyncSession, record: UserSession) -> None:
    """End the caller's session."""
    await session.execute(delete(UserSession).where(UserSession.id == record.id))


async def update_profile(session: AsyncSession, user: User, changes: dict[str, Any]) -> User:
    """Apply profile changes (display_name, timezone, avatar_url only)."""
    for field in ("display_name", "timezone", "avatar_url"):
        if field in changes:
            value = changes[field]
            setattr(user, field, None if value is None else str(value))
    await session.flush()
    return user


# --- sessions ----------------------------------------------------------------------------


def _live_sessions(settings: Settings, user_id: uuid.UUID) -> Select[UserSession]:
    """The user's live sessions, most recently active first."""
    return (
        select(UserSession)
        .where(UserSession.user_id == user_id, auth_sessions.live_at(settings, clock.now()))
        .order_by(UserSession.last_seen_at.desc(), UserSession.id)
    )


async def list_sessions(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID
) -> list[UserSession]:
    """The user's live sessions, most recently active first."""
    return list(await session.scalars(_live_sessions(settings, user_id)))


async def page_sessions(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, paging: PageParams
) -> tuple[list[UserSession], int]:
    """One page of the user's live sessions, most recently active first, and their number."""
    return await paginate(session, _live_sessions(settings, user_id), paging)


async def end_own_session(session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """End one of the user's sessions; another user's session is not found."""
    result = await session.execute(
        delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user_id)
    )
    if not getattr(result, "rowcount", 0):
        raise SessionNotFound()


# --- emailed tokens ----------------------------------------------------------------------


def email_link(settings: Settings, template: str, token: str) -> str:
    return template.format(public_url=settings.PUBLIC_URL.rstrip("/"), token=token)


async def issue_token(
    session: AsyncSession,
    user: User,
    purpose: TokenPurpose,
    ttl_seconds: int,
    *,
    email: str | None = None,
) -> tuple[str, UserToken]:
    """A new token of `purpose` for `email` (default: the user's address); the user's older
    ones of that purpose stop working."""
    await session.execute(
        delete(UserToken).where(UserToken.user_id == user.id, UserToken.purpose == purpose)
    )
    token = new_token(32)
    record = UserToken(
        user_id=user.id,
        purpose=purpose,
        token_hash=hash_token(token),
        email=email or user.email,
        expires_at=clock.now() + timedelta(seconds=ttl_seconds),
    )
    session.add(record)
    await session.flush()
    return token, record


async def _find_token(
    session: AsyncSession, token: str, purpose: TokenPurpose
) -> tuple[UserToken, User] | None:
    if not token or len(token) > 256:
        return None
    row = (
        await session.execute(
            select(UserToken, User)
            .join(User, User.id == UserToken.user_id)
            .where(UserToken.token_hash == hash_token(token), UserToken.purpose == purpose)
        )
    ).first()
    if row is None:
        return None
    record, user = row
    if record.expires_at <= clock.now() or record.email != user.email or not user.is_active:
        return None
    return record, user


async def send_verification(session: AsyncSession, settings: Settings, user: User) -> None:
    """Email the user a link that verifies their address (older links stop working)."""
    from townsquare.email import service as email_service

    token, _ = await issue_token(
        session, user, TokenPurpose.verify_email, settings.EMAIL_VERIFICATION_TTL_SECONDS
    )
    await email_service.enqueue_email(
        session,
        to=user.email,
        template="verify_email",
        context={
            "display_name": user.display_name,
            "link": email_link(settings, settings.VERIFY_EMAIL_URL, token),
            "expires_hours": max(1, settings.EMAIL_VERIFICATION_TTL_SECONDS // 3600),
        },
        settings=settings,
    )


async def resend_verification(session: AsyncSession, settings: Settings, user: User) -> None:
    """Send a new verification link to a user whose address is not verified yet."""
    if user.email_verified_at is not None:
        raise AlreadyVerified()
    await send_verification(session, settings, user)


async def verify_email(session: AsyncSession, token: str) -> User:
    """Mark the address verified; the token is used up."""
    found = await _find_token(session, token, TokenPurpose.verify_email)
    if found is None:
        raise InvalidToken()
    record, user = found
    await session.delete(record)
    if user.email_verified_at is None:
        user.email_verified_at = clock.now()
    await session.flush()
    return user


async def request_password_reset(session: AsyncSession, settings: Settings, email: str) -> None:
    """Email a reset link when an active account has this address; otherwise do the same
    amount of work and nothing else, so callers cannot tell the difference."""
    from townsquare.email import service as email_service

    user = await get_user_by_email(session, email)
    # Both paths pay for one password verification, which dominates their time.
    await passwords.burn_verification(settings, email)
    if user is None or not user.is_active:
        return
    token, _ = await issue_token(
        session, user, TokenPurpose.password_reset, settings.PASSWORD_RESET_TTL_SECONDS
    )
    await email_service.enqueue_email(
        session,
        to=user.email,
        template="password_reset",
        context={
            "display_name": user.display_name,
            "link": email_link(settings, settings.PASSWORD_RESET_URL, token),
            "expires_minutes": max(1, settings.PASSWORD_RESET_TTL_SECONDS // 60),
        },
        settings=settings,
    )


async def reset_token_is_valid(session: AsyncSession, token: str) -> bool:
    """Whether a password-reset token can still be used (read only)."""
    return await _find_token(session, token, TokenPurpose.password_reset) is not None


async def reset_password(
    session: AsyncSession, settings: Settings, *, token: str, new_password: str
) -> User:
    """Set a new password with a reset token: the token dies and every session ends."""
    found = await _find_token(session, token, TokenPurpose.password_reset)
    if found is None:
        raise InvalidToken()
    _, user = found
    _check_new_password(new_password, user.email, "new_password")
    user.password_hash = await passwords.hash_password(settings, new_password)
    if user.email_verified_at is None:
        # Following the emailed link proves the address.
        user.email_verified_at = clock.now()
    await session.execute(
        delete(UserToken).where(
            UserToken.user_id == user.id, UserToken.purpose == TokenPurpose.password_reset
        )
    )
    await auth_sessions.end_sessions(session, user.id)
    await session.flush()
    return user


async def change_password(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    current_password: str,
    new_password: str,
    user_agent: str | None,
    ip: str | None,
) -> IssuedSession:
    """Change the password: every session ends, and the caller gets a fresh one."""
    if not await passwords.verify_password(settings, user.password_hash, current_password):
        raise WrongCurrentPassword()
    _check_new_password(new_password, user.email, "new_password")
    user.password_hash = await passwords.hash_password(settings, new_password)
    await session.execute(
        delete(UserToken).where(
            UserToken.user_id == user.id, UserToken.purpose == TokenPurpose.password_reset
        )
    )
    await auth_sessions.end_sessions(session, user.id)
    await session.flush()
    return await auth_sessions.start_session(session, settings, user, user_agent=user_agent, ip=ip)


# --- staff administration ----------------------------------------------------------------


async def list_users(
    session: AsyncSession, params: PageParams, *, search: str | None = None
) -> tuple[list[User], int]:
    """Users by sign-up date (newest first), optionally matching `search` in email or name."""
    statement = select(User).order_by(User.created_at.desc(), User.id)
    if search:
        pattern = contains_pattern(search)
        statement = statement.where(
            or_(
                func.lower(User.email).like(pattern, escape="\\"),
                func.lower(User.display_name).like(pattern, escape="\\"),
            )
        )
    return await paginate(session, statement, params)


async def set_staff(
    session: AsyncSession, user: User, is_staff: bool, *, actor: User | None = None
) -> User:
    """Grant or take away staff rights (`actor` None: the command line)."""
    if actor is not None and actor.id == user.id and not is_staff:
        raise CannotChangeOwnAccount()
    user.is_staff = is_staff
    await session.flush()
    return user


async def set_active(
    session: AsyncSession, user: User, is_active: bool, *, actor: User | None = None
) -> User:
    """Deactivate (every session ends, sign-in refused) or reactivate an account."""
    if actor is not None and actor.id == user.id and not is_active:
        raise CannotChangeOwnAccount()
    user.is_active = is_active
    if not is_active:
        await auth_sessions.end_sessions(session, user.id)
    await session.flush()
    return user


# --- housekeeping ------------------------------------------------------------------------


async def delete_expired_sessions(session: AsyncSession, settings: Settings) -> int:
    """Delete sessions past their absolute or idle deadline."""
    result = await session.execute(
        delete(UserSession).where(~auth_sessions.live_at(settings, clock.now()))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_expired_tokens(session: AsyncSession) -> int:
    """Delete verification and reset tokens past their expiry."""
    result = await session.execute(delete(UserToken).where(UserToken.expires_at <= clock.now()))
    return int(getattr(result, "rowcount", 0) or 0)
