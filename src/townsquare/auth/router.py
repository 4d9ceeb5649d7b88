"""Identity endpoints: /auth (accounts, sessions, passwords) and /admin/users (staff).

Rate limits count every attempt, successful or not (see `townsquare.ratelimit`), per IP
and, where the account is known from the request, per account. Counting before the work
means a burst of concurrent guesses cannot slip past the check, and a refused request
costs no password hashing.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth import email_change, schemas, service
from townsquare.auth.deps import (
    AllowedOrigin,
    Authentication,
    CurrentAuth,
    CurrentUser,
    StaffUser,
)
from townsquare.auth.models import User
from townsquare.auth.sessions import IssuedSession
from townsquare.config import AppSettings, Settings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.kit.fields import normalize_email
from townsquare.kit.pagination import Page, PageParams, page_params
from townsquare.ratelimit import Limiter, client_ip

router = APIRouter(prefix="/auth", tags=["auth"], route_class=TransactionalRoute)
admin_router = APIRouter(prefix="/admin", tags=["admin"], route_class=TransactionalRoute)


RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many attempts; wait for Retry-After seconds"}
}
REGISTERED = "Check your inbox: we sent a link to finish signing up."
RESET_REQUESTED = "If an account has this address, a reset link is on its way."


def _user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


def _set_session_cookies(response: Response, settings: Settings, issued: IssuedSession) -> None:
    """The HttpOnly session cookie and the script-readable CSRF cookie."""
    for name, value, httponly in (
        (settings.SESSION_COOKIE_NAME, issued.token, True),
        (settings.CSRF_COOKIE_NAME, issued.csrf_token, False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS,
            secure=settings.cookie_secure,
            httponly=httponly,
            samesite="lax",
            domain=settings.SESSION_COOKIE_DOMAIN,
            path="/",
        )


set_session_cookies = _set_session_cookies  # the console signs people in the same way


def clear_session_cookies(response: Response, settings: Settings) -> None:
    for name, httponly in (
        (settings.SESSION_COOKIE_NAME, True),
        (settings.CSRF_COOKIE_NAME, False),
    ):
        response.delete_cookie(
            name,
            secure=settings.cookie_secure,
            httponly=httponly,
            samesite="lax",
            domain=settings.SESSION_COOKIE_DOMAIN,
            path="/",
        )


def _signed_in(user: User, issued: IssuedSession) -> schemas.SignedIn:
    return schemas.SignedIn(user=schemas.User.model_validate(user), csrf_token=issued.csrf_token)


# --- accounts and sign-in ----------------------------------------------------------------


async def _open_session(
    request: Request, response: Response, session: AsyncSession, settings: Settings, user: User
) -> schemas.SignedIn:
    """A fresh session for `user` (replacing the caller's old one), cookies set on `response`."""
    issued = await service.sign_in(
        session,
        settings,
        user,
        previous_token=request.cookies.get(settings.SESSION_COOKIE_NAME),
        user_agent=_user_agent(request),
        ip=client_ip(request),
    )
    _set_session_cookies(response, settings, issued)
    return _signed_in(user, issued)


@router.post(
    "/register",
    response_model=schemas.Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[AllowedOrigin],
    responses=RATE_LIMITED,
)
async def register(
    body: schemas.Registration,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> schemas.Accepted:
    """Create an account (never staff) and email a verification link. The answer is the
    same whether or not the address already has an account (its owner is emailed instead);
    nobody is signed in: sign in with `POST /auth/login`, allowed before verification."""
    await limiter.consume(
        (settings.RATE_LIMIT_REGISTER, ("register", "ip", client_ip(request))),
        (settings.RATE_LIMIT_REGISTER, ("register", "account", body.email)),
    )
    await service.register(
        session,
        settings,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        timezone=body.timezone,
    )
    return schemas.Accepted(detail=REGISTERED)


@router.post(
    "/login",
    response_model=schemas.SignedIn,
    dependencies=[AllowedOrigin],
    responses={401: {"description": "invalid_credentials"}, **RATE_LIMITED},
)
async def login(
    body: schemas.Login,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> schemas.SignedIn:
    """Sign in with email and password: a new session and CSRF token replace any old ones."""
    await limiter.consume(
        (settings.RATE_LIMIT_LOGIN, ("login", "ip", client_ip(request))),
        (
            settings.RATE_LIMIT_LOGIN_ACCOUNT,
            ("login", "account", normalize_email(body.email)),
        ),
    )
    user = await service.authenticate(session, settings, email=body.email, password=body.password)
    return await _open_session(request, response, session, settings, user)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, dependencies=[AllowedOrigin])
async def logout(
    auth: Authentication, response: Response, session: DbSession, settings: AppSettings
) -> None:
    """End the current session (if any) and clear the cookies."""
    if auth is not None:
        await service.sign_out(session, auth.session)
    clear_session_cookies(response, settings)


# --- sessions ----------------------------------------------------------------------------


@router.get("/sessions", response_model=Page[schemas.Session])
async def list_sessions(
    auth: CurrentAuth,
    session: DbSession,
    settings: AppSettings,
    paging: Annotated[PageParams, Depends(page_params)],
) -> Page[schemas.Session]:
    """The caller's live sessions, most recently active first; `current` marks the one
    making this request."""
    records, total = await service.page_sessions(session, settings, auth.user.id, paging)
    items = [
        schemas.Session.model_validate(record).model_copy(
            update={"current": record.id == auth.session.id}
        )
        for record in records
    ]
    return Page[schemas.Session].of(items, paging, total)


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "session_not_found"}},
)
async def end_session(
    session_id: uuid.UUID,
    auth: CurrentAuth,
    response: Response,
    session: DbSession,
    settings: AppSettings,
) -> None:
    """End one of the caller's sessions (another user's session is not found)."""
    await service.end_own_session(session, auth.user.id, session_id)
    if session_id == auth.session.id:
        clear_session_cookies(response, settings)


# --- passwords ---------------------------------------------------------------------------


@router.post(
    "/change-password",
    response_model=schemas.SignedIn,
    responses={400: {"description": "invalid_current_password"}, **RATE_LIMITED},
)
async def change_password(
    body: schemas.PasswordChange,
    auth: CurrentAuth,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> schemas.SignedIn:
    """Needs the current password. Every other session ends; this one gets new tokens."""
    await limiter.consume(
        (settings.RATE_LIMIT_CHANGE_PASSWORD, ("change-password", "ip", client_ip(request))),
        (settings.RATE_LIMIT_CHANGE_PASSWORD, ("change-password", "account", str(auth.user.id))),
    )
    issued = await service.change_password(
        session,
        settings,
        auth.user,
        current_password=body.current_password,
        new_password=body.new_password,
        user_agent=_user_agent(request),
        ip=client_ip(request),
    )
    _set_session_cookies(response, settings, issued)
    return _signed_in(auth.user, issued)


@router.post(
    "/request-password-reset",
    response_model=schemas.Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[AllowedOrigin],
    responses=RATE_LIMITED,
)
async def request_password_reset(
    body: schemas.PasswordResetRequest,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> schemas.Accepted:
    """Always 202 with the same body; a link goes out only if the account exists."""
    await limiter.consume(
        (settings.RATE_LIMIT_PASSWORD_RESET, ("password-reset", "ip", client_ip(request))),
        (
            settings.RATE_LIMIT_PASSWORD_RESET_ACCOUNT,
            ("password-reset", "account", normalize_email(body.email)),
        ),
    )
    await service.request_password_reset(session, settings, body.email)
    return schemas.Accepted(detail=RESET_REQUESTED)


@router.get("/validate-reset-token", response_model=schemas.TokenValidity, responses=RATE_LIMITED)
async def validate_reset_token(
    token: Annotated[str, Query(min_length=1, max_length=256)],
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> schemas.TokenValidity:
    """Whether a password-reset token is still usable."""
    await limiter.consume((settings.RATE_LIMIT_VERIFY, ("verify", "ip", client_ip(request))))
    return schemas.TokenValidity(valid=await service.reset_token_is_valid(session, token))


@router.post(
    "/reset-password",
    response_model=schemas.Accepted,
    dependencies=[AllowedOrigin],
    responses={400: {"description": "invalid_token"}, **RATE_LIMITED},
)
async def reset_password(
    body: schemas.PasswordReset,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> schemas.Accepted:
    """Set a new password with an emailed token; the token dies and every session ends."""
    await limiter.consume((settings.RATE_LIMIT_VERIFY, ("verify", "ip", client_ip(request))))
    await service.reset_password(
        session, settings, token=body.token, new_password=body.new_password
    )
    return schemas.Accepted(detail="Your password is changed; sign in with the new one.")


# --- email verification ------------------------------------------------------------------


@router.post(
    "/verify-email",
    response_model=schemas.User,
    dependencies=[AllowedOrigin],
    responses={
        400: {"description": "invalid_token"},
        409: {"description": "`email_taken`: a new address got an account meanwhile"},
        **RATE_LIMITED,
    },
)
async def verify_email(
    body: schemas.EmailedToken,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> User:
    """Verify an email address with the token from the verification email, or confirm an
    email change with the token sent to the new address (`POST /auth/me/email`): the
    address changes, every session but the caller's ends, and the old address is told."""
    await limiter.consume((settings.RATE_LIMIT_VERIFY, ("verify", "ip", client_ip(request))))
    return await email_change.verify_address(
        session,
        settings,
        body.token,
        caller_session_token=request.cookies.get(settings.SESSION_COOKIE_NAME),
    )


@router.post(
    "/resend-verification",
    response_model=schemas.Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"description": "already_verified"}, **RATE_LIMITED},
)
async def resend_verification(
    user: CurrentUser,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> schemas.Accepted:
    """Send a new verification link (older links stop working)."""
    await limiter.consume(
        (settings.RATE_LIMIT_VERIFY, ("resend-verification", "ip", client_ip(request))),
        (settings.RATE_LIMIT_VERIFY, ("resend-verification", "account", str(user.id))),
    )
    await service.resend_verification(session, settings, user)
    return schemas.Accepted(detail="A new verification link is on its way.")


# --- staff -------------------------------------------------------------------------------


@admin_router.get("/users", response_model=Page[schemas.AdminUser])
async def admin_list_users(
    staff: StaffUser,
    session: DbSession,
    params: Annotated[PageParams, Depends(page_params)],
    q: Annotated[
        str | None,
        Query(max_length=254, pattern=r"^[^\x00-\x1f\x7f]*$", description="Part of email or name"),
    ] = None,
) -> Page[schemas.AdminUser]:
    """Every account, newest first, optionally filtered by email or display name."""
    users, total = await service.list_users(session, params, search=q)
    return Page[schemas.AdminUser].of(
        [schemas.AdminUser.model_validate(u) for u in users], params, total
    )


@admin_router.post("/users/{user_id}/promote", response_model=schemas.AdminUser)
async def admin_promote(user_id: uuid.UUID, staff: StaffUser, session: DbSession) -> User:
    """Make the user staff."""
    return await service.set_staff(
        session, await service.get_user(session, user_id), True, actor=staff
    )


@admin_router.post("/users/{user_id}/demote", response_model=schemas.AdminUser)
async def admin_demote(user_id: uuid.UUID, staff: StaffUser, session: DbSession) -> User:
    """Take staff rights away (not from oneself)."""
    return await service.set_staff(
        session, await service.get_user(session, user_id), False, actor=staff
    )


@admin_router.post("/users/{user_id}/deactivate", response_model=schemas.AdminUser)
async def admin_deactivate(user_id: uuid.UUID, staff: StaffUser, session: DbSession) -> User:
    """Refuse the user's sign-ins and end all their sessions (not for oneself)."""
    return await service.set_active(
        session, await service.get_user(session, user_id), False, actor=staff
    )


@admin_router.post("/users/{user_id}/activate", response_model=schemas.AdminUser)
async def admin_activate(user_id: uuid.UUID, staff: StaffUser, session: DbSession) -> User:
    """Let a deactivated user sign in again."""
    return await service.set_active(
        session, await service.get_user(session, user_id), True, actor=staff
    )
