"""Who is calling: the session cookie resolved to a user, with CSRF and Origin checks.

Unsafe requests (POST/PUT/PATCH/DELETE) authenticated by the session cookie must carry the
session's CSRF token in `X-CSRF-Token`, and their `Origin`, when sent, must be the
public URL's origin or one of `ALLOWED_ORIGINS`; otherwise 403 `csrf_failed` before the
endpoint runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth import sessions
from townsquare.auth.models import User, UserSession
from townsquare.config import Settings
from townsquare.db import DbSession, SessionSource, get_session, transaction
from townsquare.errors import Forbidden, Unauthorized

logger = logging.getLogger("townsquare.auth")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class NotAuthenticated(Unauthorized):
    code = "not_authenticated"
    detail = "Sign in to continue."


class CsrfFailed(Forbidden):
    code = "csrf_failed"
    title = "CSRF check failed"
    detail = "Send the session's CSRF token in the X-CSRF-Token header, from an allowed origin."


class ForeignOrigin(CsrfFailed):
    detail = "Requests from this origin are not allowed."


class StaffOnly(Forbidden):
    code = "staff_only"
    detail = "Only staff may do this."


def normalize_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case without a default port, or None if malformed."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def allowed_origins(settings: Settings) -> frozenset[str]:
    """The public URL's origin and every `ALLOWED_ORIGINS` entry."""
    found = {normalize_origin(settings.PUBLIC_URL)}
    found.update(normalize_origin(origin) for origin in settings.ALLOWED_ORIGINS)
    return frozenset(origin for origin in found if origin is not None)


def origin_allowed(settings: Settings, origin: str | None) -> bool:
    """True when no Origin was sent or it is one of ours (`null` is never ours)."""
    if origin is None:
        return True
    normalized = normalize_origin(origin)
    return normalized is not None and normalized in allowed_origins(settings)


async def require_allowed_origin(request: Request) -> None:
    """Dependency for unauthenticated unsafe endpoints (login, register): refuse a foreign
    `Origin`, which would let another site sign a browser in or out."""
    if not origin_allowed(request.app.state.settings, request.headers.get("origin")):
        raise ForeignOrigin()


AllowedOrigin = Depends(require_allowed_origin)


@dataclass(frozen=True)
class Authenticated:
    """The caller's user and the session it authenticated with."""

    user: User
    session: UserSession


async def _record_activity(request: Request, settings: Settings, record: UserSession) -> None:
    if not sessions.needs_touch(settings, record):
        return
    if request.method in UNSAFE_METHODS:
        await sessions.touch_session(await get_session(request), record.id)
        return
    # Safe requests read in a deferred transaction; write in a short one of its own.
    source: SessionSource = request.app.state.database
    try:
        async with transaction(source) as write_session:
            await sessions.touch_session(write_session, record.id)
    except Exception:
        logger.warning("could not record session activity", exc_info=True)


async def authenticate(request: Request, session: DbSession) -> Authenticated | None:
    """The caller's live session and user from the session cookie, or None (anonymous).

    On unsafe methods a cookie-authenticated caller must pass the CSRF and Origin checks.
    """
    settings: Settings = request.app.state.settings
    token = request.cookies.get(settings.SESSION_COOKIE_NAME)
    if not token:
        return None
    found = await sessions.find_live_session(session, settings, token)
    if found is None:
        return None
    record, user = found
    if request.method in UNSAFE_METHODS:
        if not origin_allowed(settings, request.headers.get("origin")):
            raise ForeignOrigin()
        if not sessions.csrf_token_matches(settings, record, request.headers.get(CSRF_HEADER)):
            raise CsrfFailed()
    await _record_activity(request, settings, record)
    return Authenticated(user=user, session=record)


async def authenticate_handshake(
    session: AsyncSession, settings: Settings, *, cookies: Mapping[str, str], origin: str | None
) -> Authenticated | None:
    """For a WebSocket handshake, which cannot carry a CSRF header: a foreign `Origin`
    raises `ForeignOrigin`; otherwise the live session of the cookie, or None."""
    if not origin_allowed(settings, origin):
        raise ForeignOrigin()
    token = cookies.get(settings.SESSION_COOKIE_NAME)
    if not token:
        return None
    found = await sessions.find_live_session(session, settings, token)
    return None if found is None else Authenticated(user=found[1], session=found[0])


Authentication = Annotated[Authenticated | None, Depends(authenticate)]


async def require_authenticated(auth: Authentication) -> Authenticated:
    if auth is None:
        raise NotAuthenticated()
    return auth


async def current_user(auth: Annotated[Authenticated, Depends(require_authenticated)]) -> User:
    """The signed-in user; 401 `not_authenticated` without a live session."""
    return auth.user


async def staff_user(user: Annotated[User, Depends(current_user)]) -> User:
    """The signed-in user when staff; 403 `staff_only` otherwise."""
    if not user.is_staff:
        raise StaffOnly()
    return user


CurrentAuth = Annotated[Authenticated, Depends(require_authenticated)]
CurrentUser = Annotated[User, Depends(current_user)]
StaffUser = Annotated[User, Depends(staff_user)]
