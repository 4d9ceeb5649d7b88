"""Pages before and around sign-in: sign in, register, verify email, forgot and reset
password, sign out. Rate limits are the API's own (same settings, same keys)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from townsquare.auth import email_change
from townsquare.auth import schemas as auth_schemas
from townsquare.auth import service as auth_service
from townsquare.auth.router import clear_session_cookies, set_session_cookies
from townsquare.config import Settings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.kit.fields import normalize_email
from townsquare.ratelimit import Limiter, client_ip
from townsquare.web.forms import FormErrors, parse
from townsquare.web.identity import Visitor, visitor
from townsquare.web.pages import redirect, render
from townsquare.web.submit import handle_form, safe_next

router = APIRouter(route_class=TransactionalRoute, include_in_schema=False)
TokenQuery = Annotated[str, Query(max_length=256)]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _page(request: Request, session: DbSession, template: str, **context: Any) -> Response:
    who = await visitor(request, session)
    return await render(request, session, who, template, **context)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, session: DbSession, next: str = "/") -> Response:
    return await _page(request, session, "login.html", next=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, session: DbSession, limiter: Limiter) -> Response:
    settings = _settings(request)

    async def sign_in(who: Visitor, values: dict[str, str], errors: FormErrors) -> Response | None:
        body = parse(auth_schemas.Login, values, errors)
        if body is None:
            return None
        await limiter.consume(
            (settings.RATE_LIMIT_LOGIN, ("login", "ip", client_ip(request))),
            (
                settings.RATE_LIMIT_LOGIN_ACCOUNT,
                ("login", "account", normalize_email(body.email)),
            ),
        )
        user = await auth_service.authenticate(
            session, settings, email=body.email, password=body.password
        )
        issued = await auth_service.sign_in(
            session,
            settings,
            user,
            previous_token=request.cookies.get(settings.SESSION_COOKIE_NAME),
            user_agent=request.headers.get("user-agent"),
            ip=client_ip(request),
        )
        response = redirect(safe_next(values.get("next")))
        set_session_cookies(response, settings, issued)
        return response

    return await handle_form(
        request,
        session,
        "login.html",
        sign_in,
        keep=("email", "next"),
        field_for={"invalid_credentials": "password", "rate_limited": "password"},
    )


@router.get("/register", response_class=HTMLResponse)
async def register_page(request: Request, session: DbSession) -> Response:
    return await _page(request, session, "register.html")


@router.post("/register", response_class=HTMLResponse)
async def register(request: Request, session: DbSession, limiter: Limiter) -> Response:
    settings = _settings(request)

    async def create(who: Visitor, values: dict[str, str], errors: FormErrors) -> Response | None:
        body = parse(auth_schemas.Registration, values, errors, optional=("timezone",))
        if body is None:
            return None
        await limiter.consume(
            (settings.RATE_LIMIT_REGISTER, ("register", "ip", client_ip(request))),
            (settings.RATE_LIMIT_REGISTER, ("register", "account", body.email)),
        )
        await auth_service.register(
            session,
            settings,
            email=body.email,
            password=body.password,
            display_name=body.display_name,
            timezone=body.timezone,
        )
        return redirect("/login", notice="registered")

    return await handle_form(
        request,
        session,
        "register.html",
        create,
        keep=("email", "display_name", "timezone"),
        field_for={"rate_limited": "email"},
    )


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email_page(
    request: Request, session: DbSession, token: TokenQuery = ""
) -> Response:
    # A button, not the GET itself: mail scanners open links and must not use them up.
    return await _page(request, session, "verify_email.html", token=token)


@router.post("/verify-email", response_class=HTMLResponse)
async def verify_email(request: Request, session: DbSession, limiter: Limiter) -> Response:
    settings = _settings(request)

    async def verify(who: Visitor, values: dict[str, str], errors: FormErrors) -> Response | None:
        body = parse(auth_schemas.EmailedToken, values, errors)
        if body is None:
            return None
        await limiter.consume((settings.RATE_LIMIT_VERIFY, ("verify", "ip", client_ip(request))))
        await email_change.verify_address(
            session,
            settings,
            body.token,
            caller_session_token=request.cookies.get(settings.SESSION_COOKIE_NAME),
        )
        return redirect("/" if who.user else "/login", notice="verified")

    return await handle_form(
        request,
        session,
        "verify_email.html",
        verify,
        keep=("token",),
        field_for={"invalid_token": "token", "email_taken": "token", "rate_limited": "token"},
    )


@router.get("/forgot-password", response_class=HTMLResponse)
async def forgot_password_page(request: Request, session: DbSession) -> Response:
    return await _page(request, session, "forgot_password.html")


@router.post("/forgot-password", response_class=HTMLResponse)
async def forgot_password(request: Request, session: DbSession, limiter: Limiter) -> Response:
    settings = _settings(request)

    async def send(who: Visitor, values: dict[str, str], errors: FormErrors) -> Response | None:
        body = parse(auth_schemas.PasswordResetRequest, values, errors)
        if body is None:
            return None
        await limiter.consume(
            (settings.RATE_LIMIT_PASSWORD_RESET, ("password-reset", "ip", client_ip(request))),
            (
                settings.RATE_LIMIT_PASSWORD_RESET_ACCOUNT,
                ("password-reset", "account", normalize_email(body.email)),
            ),
        )
        await auth_service.request_password_reset(session, settings, body.email)
        return redirect("/login", notice="reset_sent")

    return await handle_form(
        request,
        session,
        "forgot_password.html",
        send,
        keep=("email",),
        field_for={"rate_limited": "email"},
    )


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_password_page(
    request: Request, session: DbSession, token: TokenQuery = ""
) -> Response:
    return await _page(request, session, "reset_password.html", token=token)


@router.post("/reset-password", response_class=HTMLResponse)
async def reset_password(request: Request, session: DbSession, limiter: Limiter) -> Response:
    settings = _settings(request)

    async def reset(who: Visitor, values: dict[str, str], errors: FormErrors) -> Response | None:
        body = parse(auth_schemas.PasswordReset, values, errors)
        if body is None:
            return None
        await limiter.consume((settings.RATE_LIMIT_VERIFY, ("verify", "ip", client_ip(request))))
        await auth_service.reset_password(
            session, settings, token=body.token, new_password=body.new_password
        )
        response = redirect("/login", notice="password_reset")
        clear_session_cookies(response, settings)
        return response

    return await handle_form(
        request,
        session,
        "reset_password.html",
        reset,
        keep=("token",),
        field_for={"invalid_token": "new_password", "rate_limited": "new_password"},
    )


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request, session: DbSession) -> Response:
    settings = _settings(request)

    async def sign_out(who: Visitor, values: dict[str, str], errors: FormErrors) -> Response | None:
        if who.session is not None:
            await auth_service.sign_out(session, who.session)
        response = redirect("/login", notice="signed_out")
        clear_session_cookies(response, settings)
        return response

    return await handle_form(request, session, "signed_out.html", sign_out)
