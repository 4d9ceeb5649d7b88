"""Rendering a page: the Jinja2 environment (autoescaped), the frame's context (who is
signed in, their organizations and the current one), notices and security headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.router import REGISTERED, RESET_REQUESTED
from townsquare.config import Settings
from townsquare.orgs import service as orgs_service
from townsquare.orgs.schemas import MyOrganization
from townsquare.web.forms import FormErrors
from townsquare.web.identity import Visitor

TEMPLATES = Path(__file__).parent / "templates"
CURRENT_ORG_COOKIE = "townsquare_org"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

# No inline script or style anywhere: the vendored files are all the page runs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# Fixed sentences by key: a link can ask for one, but never put its own text on the page.
# Where the API answers the same step, the page says what the API says.
NOTICES = {
    "registered": REGISTERED,
    "verified": "Your email address is verified.",
    "signed_out": "You are signed out.",
    "reset_sent": RESET_REQUESTED,
    "password_reset": "Your password is changed; sign in with the new one.",
    "password_changed": "Your password is changed; your other sessions have ended.",
    "session_ended": "The session has ended.",
    "org_created": "The organization is created.",
    "org_switched": "Switched organization.",
    "verification_sent": "A new verification link is on its way.",
}


def current_org(request: Request, orgs: list[MyOrganization]) -> MyOrganization | None:
    """The organization chosen with "switch" (a cookie), else the first one."""
    chosen = request.cookies.get(CURRENT_ORG_COOKIE)
    for org in orgs:
        if org.slug == chosen:
            return org
    return orgs[0] if orgs else None


async def render(
    request: Request,
    session: AsyncSession,
    who: Visitor,
    template: str,
    *,
    status_code: int = 200,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    orgs: list[MyOrganization] = []
    if who.user is not None:
        orgs = await orgs_service.list_memberships_for_user(session, who.user)
    html = _environment.get_template(template).render(
        request=request,
        who=who,
        orgs=orgs,
        current_org=current_org(request, orgs),
        notice=NOTICES.get(request.query_params.get("notice", "")),
        errors=(errors or FormErrors()).messages,
        values=values or {},
        dev_mailbox=settings.dev_mailbox,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    who.keep_pre_session(response, settings)
    return response


def redirect(path: str, *, notice: str | None = None) -> RedirectResponse:
    """303 See Other: the browser follows with a GET (post, redirect, get)."""
    url = f"{path}?notice={notice}" if notice else path
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def not_found_page() -> HTMLResponse:
    html = _environment.get_template("not_found.html").render()
    return HTMLResponse(html, status_code=404, headers=SECURITY_HEADERS)
