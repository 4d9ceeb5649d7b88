"""Who is looking at a page, and the CSRF token every form of the page carries.

Signed-in forms carry the session's CSRF token, the one the API derives
(`auth.sessions.csrf_token_for`). Forms shown before sign-in (sign in, register, reset)
have no session to bind to: they carry an HMAC of a random pre-session cookie, so another
site cannot post them for the browser either. Every unsafe request's `Origin`, when sent,
must be ours, as for the API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth import sessions
from townsquare.auth.deps import origin_allowed
from townsquare.auth.models import User, UserSession
from townsquare.config import Settings
from townsquare.kit.tokens import new_token, tokens_equal

PRE_SESSION_COOKIE = "townsquare_form"
CSRF_FIELD = "csrf_token"


@dataclass
class Visitor:
    """The person on the page: signed in (`user`, `session`) or not, and their form token."""

    user: User | None
    session: UserSession | None
    csrf_token: str
    new_pre_session: str | None = None

    def signed_in(self) -> tuple[User, UserSession]:
        """The user and session, on a page that only signed-in visitors reach."""
        if self.user is None or self.session is None:
            raise RuntimeError("the page needs a signed-in visitor")
        return self.user, self.session

    def keep_pre_session(self, response: Response, settings: Settings) -> None:
        """Set the pre-session cookie the page's forms are bound to, when it is new."""
        if self.new_pre_session is not None:
            response.set_cookie(
                PRE_SESSION_COOKIE,
                self.new_pre_session,
                httponly=True,
                samesite="lax",
                secure=settings.cookie_secure,
                path="/",
            )


def _pre_session_token(settings: Settings, value: str) -> str:
    mac = hmac.new(
        settings.SECRET_KEY.encode(), b"townsquare-form:" + value.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


async def visitor(request: Request, session: AsyncSession) -> Visitor:
    """The visitor of this request, from the session cookie (or the pre-session cookie)."""
    settings: Settings = request.app.state.settings
    token = request.cookies.get(settings.SESSION_COOKIE_NAME)
    found = await sessions.find_live_session(session, settings, token) if token else None
    if found is not None:
        record, user = found
        return Visitor(user, record, sessions.csrf_token_for(settings, record.token_hash))
    pre = request.cookies.get(PRE_SESSION_COOKIE)
    fresh = None
    if not pre or len(pre) > 128:
        pre = fresh = new_token(24)
    return Visitor(None, None, _pre_session_token(settings, pre), new_pre_session=fresh)


def form_is_ours(request: Request, who: Visitor, submitted: str | None) -> bool:
    """The form came from our page: an allowed Origin and the visitor's CSRF token.

    A freshly made pre-session token never matches: the form was not served to this browser.
    """
    settings: Settings = request.app.state.settings
    if not origin_allowed(settings, request.headers.get("origin")):
        return False
    if not submitted or who.new_pre_session is not None:
        return False
    return tokens_equal(who.csrf_token, submitted)
