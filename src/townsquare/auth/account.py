"""`POST /auth/me/email`: ask for a new email address (see `email_change`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from townsquare.auth import email_change, schemas
from townsquare.auth.deps import CurrentUser
from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.kit.fields import Email, RequestBody
from townsquare.ratelimit import Limiter, client_ip

router = APIRouter(prefix="/auth", tags=["auth"], route_class=TransactionalRoute)

EMAIL_CHANGE_REQUESTED = (
    "If the address can be used, a confirmation link is on its way to it; "
    "your address changes when you open the link."
)


class EmailChange(RequestBody):
    email: Email
    """The new address."""
    password: schemas.AnyPassword
    """The account's current password."""


@router.post(
    "/me/email",
    response_model=schemas.Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        400: {"description": "`invalid_current_password`"},
        401: {"description": "`not_authenticated`"},
        422: {"description": "`email_unchanged`, or an invalid address"},
        429: {"description": "Too many attempts; wait for Retry-After seconds"},
    },
)
async def request_email_change(
    body: EmailChange,
    user: CurrentUser,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> schemas.Accepted:
    """Needs the current password. Emails a confirmation link to the new address, which
    `POST /auth/verify-email` accepts; the address changes only then. The answer is the
    same whether or not the new address has an account (its owner is told instead)."""
    await limiter.consume(
        (settings.RATE_LIMIT_CHANGE_PASSWORD, ("change-email", "ip", client_ip(request))),
        (settings.RATE_LIMIT_CHANGE_PASSWORD, ("change-email", "account", str(user.id))),
        # Like registration, a request emails the address it names: the same per-address cap.
        (settings.RATE_LIMIT_REGISTER, ("change-email", "address", body.email)),
    )
    await email_change.request_email_change(
        session, settings, user, new_email=body.email, password=body.password
    )
    return schemas.Accepted(detail=EMAIL_CHANGE_REQUESTED)
