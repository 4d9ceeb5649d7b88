"""The signed-in person's own pages: change password, sessions (end one)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from townsquare.auth import schemas as auth_schemas
from townsquare.auth import service as auth_service
from townsquare.auth.router import clear_session_cookies, set_session_cookies
from townsquare.config import Settings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.ratelimit import Limiter, client_ip
from townsquare.web.forms import FormErrors, parse
from townsquare.web.identity import Visitor, visitor
from townsquare.web.pages import redirect, render
from townsquare.web.submit import handle_form

router = APIRouter(prefix="/account", route_class=TransactionalRoute, include_in_schema=False)


async def _sessions_context(request: Request, session: DbSession, who: Visitor) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    user, current = who.signed_in()
    records = await auth_service.list_sessions(session, settings, user.id)
    return {"sessions": records, "current_id": current.id}


@router.get("/password", response_class=HTMLResponse)
async def password_page(request: Request, session: DbSession) -> Response:
    who = await visitor(request, session)
    if who.user is None:
        return redirect("/login")
    return await render(request, session, who, "change_password.html")


@router.post("/password", response_class=HTMLResponse)
async def change_password(request: Request, session: DbSession, limiter: Limiter) -> Response:
    settings: Settings = request.app.state.settings

    async def change(who: Visitor, values: dict[str, str], errors: FormErrors) -> Response | None:
        user, _ = who.signed_in()
        body = parse(auth_schemas.PasswordChange, values, errors)
        if body is None:
            return None
        await limiter.consume(
            (settings.RATE_LIMIT_CHANGE_PASSWORD, ("change-password", "ip", client_ip(request))),
            (
                settings.RATE_LIMIT_CHANGE_PASSWORD,
                ("change-password", "account", str(user.id)),
            ),
        )
        issued = await auth_service.change_password(
            session,
            settings,
            user,
            current_password=body.current_password,
            new_password=body.new_password,
            user_agent=request.headers.get("user-agent"),
            ip=client_ip(request),
        )
        response = redirect("/account/sessions", notice="password_changed")
        set_session_cookies(response, settings, issued)
        return response

    return await handle_form(
        request,
        session,
        "change_password.html",
        change,
        signed_in=True,
        field_for={
            "invalid_current_password": "current_password",
            "rate_limited": "current_password",
        },
    )


@router.get("/sessions", response_class=HTMLResponse)
async def sessions_page(request: Request, session: DbSession) -> Response:
    who = await visitor(request, session)
    if who.user is None:
        return redirect("/login")
    context = await _sessions_context(request, session, who)
    return await render(request, session, who, "sessions.html", **context)


@router.post("/sessions/{session_id}/end", response_class=HTMLResponse)
async def end_session(session_id: uuid.UUID, request: Request, session: DbSession) -> Response:
    settings: Settings = request.app.state.settings

    async def end(who: Visitor, values: dict[str, str], errors: FormErrors) -> Response | None:
        user, current = who.signed_in()
        await auth_service.end_own_session(session, user.id, session_id)
        if session_id == current.id:
            response = redirect("/login", notice="signed_out")
            clear_session_cookies(response, settings)
            return response
        return redirect("/account/sessions", notice="session_ended")

    async def shown_again(who: Visitor) -> dict[str, Any]:
        return await _sessions_context(request, session, who)

    return await handle_form(
        request, session, "sessions.html", end, signed_in=True, context_for=shown_again
    )


@router.post("/verification", response_class=HTMLResponse)
async def resend_verification(request: Request, session: DbSession, limiter: Limiter) -> Response:
    settings: Settings = request.app.state.settings

    async def resend(who: Visitor, values: dict[str, str], errors: FormErrors) -> Response | None:
        user, _ = who.signed_in()
        await limiter.consume(
            (settings.RATE_LIMIT_VERIFY, ("resend-verification", "ip", client_ip(request))),
            (settings.RATE_LIMIT_VERIFY, ("resend-verification", "account", str(user.id))),
        )
        await auth_service.resend_verification(session, settings, user)
        return redirect("/", notice="verification_sent")

    return await handle_form(request, session, "home.html", resend, signed_in=True)
