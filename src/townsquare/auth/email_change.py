"""Changing an account's email address: asked for with the password, taking effect only
when the link sent to the new address is opened.

The request answers alike whether or not the new address already has an account (its
owner is told instead, and nothing of theirs changes), so it cannot be used to find out
who has an account. The link goes to `VERIFY_EMAIL_URL`, and `POST /auth/verify-email`
accepts its token: a client's verification page serves both. When the change takes
effect the old address is told, every token sent to the old address dies, and every
session ends except the one that opened the link.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth import passwords, service
from townsquare.auth import sessions as auth_sessions
from townsquare.auth.enums import TokenPurpose
from townsquare.auth.errors import EmailTaken, WrongCurrentPassword
from townsquare.auth.models import User, UserSession, UserToken
from townsquare.config import Settings
from townsquare.db import flush_or_conflict
from townsquare.errors import field_error
from townsquare.kit import clock
from townsquare.kit.fields import normalize_email
from townsquare.kit.tokens import hash_token

_USERS_EMAIL = "uq_users_email"


class EmailTakenMeanwhile(EmailTaken):
    detail = (
        "Another account started using this address after the link was sent; "
        "your address was not changed."
    )


async def request_email_change(
    session: AsyncSession, settings: Settings, user: User, *, new_email: str, password: str
) -> None:
    """Check the password, then email a confirmation link to `new_email`, or, when that
    address has an account, a note to its owner. Either way the user's older links die."""
    from townsquare.email import service as email_service

    if not await passwords.verify_password(settings, user.password_hash, password):
        raise WrongCurrentPassword()
    address = normalize_email(new_email)
    if address == user.email:
        raise field_error("email", "This is already your email address.", "email_unchanged")
    await session.execute(
        delete(UserToken).where(
            UserToken.user_id == user.id, UserToken.purpose == TokenPurpose.change_email
        )
    )
    owner = await service.get_user_by_email(session, address)
    if owner is not None:
        await email_service.enqueue_email(
            session,
            to=owner.email,
            template="email_change_taken",
            context={"display_name": owner.display_name, "public_url": settings.PUBLIC_URL},
            settings=settings,
        )
        return
    token, _ = await service.issue_token(
        session,
        user,
        TokenPurpose.change_email,
        settings.EMAIL_VERIFICATION_TTL_SECONDS,
        email=address,
    )
    await email_service.enqueue_email(
        session,
        to=address,
        template="email_change_verify",
        context={
            "display_name": user.display_name,
            "link": service.email_link(settings, settings.VERIFY_EMAIL_URL, token),
            "expires_hours": max(1, settings.EMAIL_VERIFICATION_TTL_SECONDS // 3600),
        },
        settings=settings,
    )


async def _find_change(session: AsyncSession, token: str) -> tuple[UserToken, User] | None:
    if not token or len(token) > 256:
        return None
    row = (
        await session.execute(
            select(UserToken, User)
            .join(User, User.id == UserToken.user_id)
            .where(
                UserToken.token_hash == hash_token(token),
                UserToken.purpose == TokenPurpose.change_email,
            )
            .with_for_update(of=User, key_share=True)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        return None
    record, user = row
    if record.expires_at <= clock.now() or not user.is_active:
        return None
    return record, user


async def confirm_email_change(
    session: AsyncSession, settings: Settings, token: str, *, caller_session_token: str | None
) -> User | None:
    """Apply the change the token was sent for; None when `token` is no live change token.

    409 `email_taken` (and nothing changes, the link keeps working) when another account
    took the address meanwhile."""
    from townsquare.email import service as email_service

    found = await _find_change(session, token)
    if found is None:
        return None
    record, user = found
    old_email, new_email = user.email, record.email
    if await service.get_user_by_email(session, new_email) is not None:
        raise EmailTakenMeanwhile()

    def apply() -> None:
        user.email = new_email
        user.email_verified_at = clock.now()

    await flush_or_conflict(session, {_USERS_EMAIL: EmailTakenMeanwhile}, apply=apply)
    # Links sent to the old address (verification, reset) must not work any more.
    await session.execute(delete(UserToken).where(UserToken.user_id == user.id))
    keep = await _caller_session_id(session, user, caller_session_token)
    await auth_sessions.end_sessions(session, user.id, keep=keep)
    await email_service.enqueue_email(
        session,
        to=old_email,
        template="email_changed",
        context={
            "display_name": user.display_name,
            "new_email": new_email,
            "public_url": settings.PUBLIC_URL,
        },
        settings=settings,
    )
    await session.flush()
    return user


async def _caller_session_id(
    session: AsyncSession, user: User, token: str | None
) -> uuid.UUID | None:
    if not token or len(token) > 256:
        return None
    return await session.scalar(
        select(UserSession.id).where(
            UserSession.token_hash == hash_token(token), UserSession.user_id == user.id
        )
    )


async def verify_address(
    session: AsyncSession, settings: Settings, token: str, *, caller_session_token: str | None
) -> User:
    """`POST /auth/verify-email`: a change-of-address token applies its change; any other
    token verifies the account's current address (`invalid_token` when neither)."""
    changed = await confirm_email_change(
        session, settings, token, caller_session_token=caller_session_token
    )
    if changed is not None:
        return changed
    return await service.verify_email(session, token)
