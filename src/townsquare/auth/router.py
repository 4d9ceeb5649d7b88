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

from townsquare.auth import service
from townsquare.auth.deps import (
    AllowedOrigin,
    Authentication,
    CurrentAuth,
    CurrentUser,
    StaffUser,
)
from townsquare.auth.models import User
from townsquare.auth.schemas import (
    Accepted,
    AdminUserOut,
    ChangePasswordRequest,
    LoginRequest,
    Me,
    MembershipSummary,
    PasswordResetRequest,
    RegisterRequest,
    ResetPasswordRequest,
    SessionList,
    SessionOut,
    SignedIn,
    TokenRequest,
    TokenValidity,
    UpdateMeRequest,
    UserOut,
)
from townsquare.auth.sessions import IssuedSession
from townsquare.config import AppSettings, Settings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.kit.pagination import Page, PageParams, page_params
from townsquare.orgs import service as orgs_service
from townsquare.ratelimit import RateLimiter, client_ip, get_rate_limiter

router = APIRouter(prefix="/auth", tags=["auth"], route_class=TransactionalRoute)
admin_router = APIRouter(prefix="/admin", tags=["admin"], route_class=TransactionalRoute)

Limiter = Annotated[RateLimiter, Depends(get_rate_limiter)]

RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many attempts; wait for Retry-After seconds"}
}
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


def _clear_session_cookies(response: Response, settings: Settings) -> None:
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


def _signed_in(user: User, issued: IssuedSession) -> SignedIn:
    return SignedIn(user=UserOut.model_validate(user), csrf_token=issued.csrf_token)


# --- accounts and sign-in ----------------------------------------------------------------


async def _open_session(
    request: Request, response: Response, session: AsyncSession, settings: Settings, user: User
) -> SignedIn:
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
    response_model=SignedIn,
    status_code=status.HTTP_201_CREATED,
    dependencies=[AllowedOrigin],
    responses={409: {"description": "email_taken"}, **RATE_LIMITED},
)
async def register(
    body: RegisterRequest,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> SignedIn:
    """Create an account and sign it in; a verification email is sent. Never staff."""
    await limiter.consume(
        (settings.RATE_LIMIT_REGISTER, ("register", "ip", client_ip(request))),
        (settings.RATE_LIMIT_REGISTER, ("register", "account", body.email)),
    )
    user = await service.register(
        session,
        settings,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        timezone=body.timezone,
    )
    return await _open_session(request, response, session, settings, user)


@router.post(
    "/login",
    response_model=SignedIn,
    dependencies=[AllowedOrigin],
    responses={401: {"description": "invalid_credentials"}, **RATE_LIMITED},
)
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> SignedIn:
    """Sign in with email and password: a new session and CSRF token replace any old ones."""
    await limiter.consume(
        (settings.RATE_LIMIT_LOGIN, ("login", "ip", client_ip(request))),
        (
            settings.RATE_LIMIT_LOGIN_ACCOUNT,
            ("login", "account", service.normalize_email(body.email)),
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
    _clear_session_cookies(response, settings)


@router.get("/me", response_model=Me)
async def get_me(user: CurrentUser, session: DbSession) -> Me:
    """The signed-in user and the organizations they belong to."""
    organizations = await orgs_service.list_memberships_for_user(session, user.id)
    return Me(
        **UserOut.model_validate(user).model_dump(),
        organizations=[MembershipSummary(**org.model_dump(mode="json")) for org in organizations],
    )


@router.patch("/me", response_model=Me)
async def update_me(body: UpdateMeRequest, user: CurrentUser, session: DbSession) -> Me:
    """Change display name, time zone or avatar; any other field is refused (422)."""
    await service.update_profile(session, user, body.model_dump(exclude_unset=True))
    return await get_me(user, session)


# --- sessions ----------------------------------------------------------------------------


@router.get("/sessions", response_model=SessionList)
async def list_sessions(
    auth: CurrentAuth, session: DbSession, settings: AppSettings
) -> SessionList:
    """The caller's live sessions; `current` marks the one making this request."""
    records = await service.list_sessions(session, settings, auth.user.id)
    return SessionList(
        items=[
            SessionOut.model_validate(record).model_copy(
                update={"current": record.id == auth.session.id}
            )
            for record in records
        ]
    )


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
        _clear_session_cookies(response, settings)


# --- passwords ---------------------------------------------------------------------------


@router.post(
    "/change-password",
    response_model=SignedIn,
    responses={400: {"description": "invalid_current_password"}, **RATE_LIMITED},
)
async def change_password(
    body: ChangePasswordRequest,
    auth: CurrentAuth,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> SignedIn:
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
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[AllowedOrigin],
    responses=RATE_LIMITED,
)
async def request_password_reset(
    body: PasswordResetRequest,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> Accepted:
    """Always 202 with the same body; a link goes out only if the account exists."""
    await limiter.consume(
        (settings.RATE_LIMIT_PASSWORD_RESET, ("password-reset", "ip", client_ip(request))),
        (
            settings.RATE_LIMIT_PASSWORD_RESET_ACCOUNT,
            ("password-reset", "account", service.normalize_email(body.email)),
        ),
    )
    await service.request_password_reset(session, settings, body.email)
    return Accepted(detail=RESET_REQUESTED)


@router.get("/validate-reset-token", response_model=TokenValidity, responses=RATE_LIMITED)
async def validate_reset_token(
    token: Annotated[str, Query(min_length=1, max_length=256)],
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> TokenValidity:
    """Whether a password-reset token is still usable."""
    await limiter.consume((settings.RATE_LIMIT_VERIFY, ("verify", "ip", client_ip(request))))
    return TokenValidity(valid=await service.reset_token_is_valid(session, token))


@router.post(
    "/reset-password",
    response_model=Accepted,
    dependencies=[AllowedOrigin],
    responses={400: {"description": "invalid_token"}, **RATE_LIMITED},
)
async def reset_password(
    body: ResetPasswordRequest,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> Accepted:
    """Set a new password with an emailed token; the token dies and every session ends."""
    await limiter.consume((settings.RATE_LIMIT_VERIFY, ("verify", "ip", client_ip(request))))
    await service.reset_password(
        session, settings, token=body.token, new_password=body.new_password
    )
    return Accepted(detail="Your password is changed; sign in with the new one.")


# --- email verification ------------------------------------------------------------------


@router.post(
    "/verify-email",
    response_model=UserOut,
    dependencies=[AllowedOrigin],
    responses={400: {"description": "invalid_token"}, **RATE_LIMITED},
)
async def verify_email(
    body: TokenRequest,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> User:
    """Verify an email address with the token from the verification email."""
    await limiter.consume((settings.RATE_LIMIT_VERIFY, ("verify", "ip", client_ip(request))))
    return await service.verify_email(session, body.token)


@router.post(
    "/resend-verification",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"description": "already_verified"}, **RATE_LIMITED},
)
async def resend_verification(
    user: CurrentUser,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> Accepted:
    """Send a new verification link (older links stop working)."""
    await limiter.consume(
        (settings.RATE_LIMIT_VERIFY, ("resend-verification", "ip", client_ip(request))),
        (settings.RATE_LIMIT_VERIFY, ("resend-verification", "account", str(user.id))),
    )
    await service.resend_verification(session, settings, user)
    return Accepted(detail="A new verification link is on its way.")


# --- staff -------------------------------------------------------------------------------


@admin_router.get("/users", response_model=Page[AdminUserOut])
async def admin_list_users(
    staff: StaffUser,
    session: DbSession,
    params: Annotated[PageParams, Depends(page_params)],
    q: Annotated[
        str | None,
        Query(max_length=254, pattern=r"^[^\x00-\x1f\x7f]*$", description="Part of email or name"),
    ] = None,
) -> Page[AdminUserOut]:
    """Every account, newest first, optionally filtered by email or display name."""
    users, total = await service.list_users(session, params, search=q)
    return Page[AdminUserOut](
        items=[AdminUserOut.model_validate(u) for u in users],
        page=params.page,
        per_page=params.per_page,
        total=total,
    )


@admin_router.post("/users/{user_id}/promote", response_model=AdminUserOut)
async def admin_promote(user_id: uuid.UUID, staff: StaffUser, session: DbSession) -> User:
    """Make the user staff."""
    return await service.set_staff(
        session, await service.get_user(session, user_id), True, actor=staff
    )


@admin_router.post("/users/{user_id}/demote", response_model=AdminUserOut)
async def admin_demote(user_id: uuid.UUID, staff: StaffUser, session: DbSession) -> User:
    """Take staff rights away (not from oneself)."""
    return await service.set_staff(
        session, await service.get_user(session, user_id), False, actor=staff
    )


@admin_router.post("/users/{user_id}/deactivate", response_model=AdminUserOut)
async def admin_deactivate(user_id: uuid.UUID, staff: StaffUser, session: DbSession) -> User:
    """Refuse the user's sign-ins and end all their sessions (not for oneself)."""
    return await service.set_active(
        session, await service.get_user(session, user_id), False, actor=staff
    )


@admin_router.post("/users/{user_id}/activate", response_model=AdminUserOut)
async def admin_activate(user_id: uuid.UUID, staff: StaffUser, session: DbSession) -> User:
    """Let a deactivated user sign in again."""
    return await service.set_active(
        session, await service.get_user(session, user_id), True, actor=staff
    )
