"""One way every form post goes: check the form is ours, run the action, and either
redirect (post, redirect, get) or show the form again with its messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.errors import AppError
from townsquare.web.forms import FORM_LEVEL, FormErrors, add_app_error, read_form
from townsquare.web.identity import CSRF_FIELD, Visitor, form_is_ours, visitor
from townsquare.web.pages import redirect, render

Action = Callable[[Visitor, dict[str, str], FormErrors], Awaitable[Response | None]]

FORM_NOT_OURS = "This form has expired or did not come from this site; please submit it again."


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go to after the form, never another site."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    return value


async def handle_form(
    request: Request,
    session: AsyncSession,
    template: str,
    action: Action,
    *,
    keep: Iterable[str] = (),
    field_for: dict[str, str] | None = None,
    signed_in: bool = False,
    context_for: Callable[[Visitor], Awaitable[dict[str, Any]]] | None = None,
) -> Response:
    """Run `action` on the posted form. It answers a response (usually a redirect), or
    fills `errors`; a service's `AppError` becomes a message by the field it concerns.
    Fields named in `keep` are shown again (never passwords); `context_for` gives what
    else the page shows, read only when the form is shown again."""
    who = await visitor(request, session)
    if signed_in and who.user is None:
        return redirect("/login")
    values = await read_form(request)
    errors = FormErrors()
    status = 422
    if not form_is_ours(request, who, values.get(CSRF_FIELD)):
        errors.add(FORM_LEVEL, FORM_NOT_OURS)
        status = 403
    else:
        try:
            response = await action(who, values, errors)
        except AppError as exc:
            add_app_error(errors, exc, field_for=field_for or {})
            status = exc.status
        else:
            if response is not None and not errors:
                return response
    kept = set(keep)
    shown = {name: value for name, value in values.items() if name in kept}
    context = await context_for(who) if context_for is not None else {}
    return await render(
        request,
        session,
        who,
        template,
        status_code=status,
        errors=errors,
        values=shown,
        **context,
    )
