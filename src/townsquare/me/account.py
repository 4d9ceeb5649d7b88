"""The signed-in person's account: `DELETE /auth/me`, `GET /me/export`, and
`GET /me/invitations` with `POST /me/invitations/{id}/accept`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from townsquare.auth import schemas as auth_schemas
from townsquare.auth.deps import CurrentAuth, CurrentUser
from townsquare.auth.router import clear_session_cookies
from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.kit.fields import RequestBody
from townsquare.kit.pagination import Page, PageParams, page_params
from townsquare.me import deletion, export, export_schemas, invitations
from townsquare.orgs import invitations as orgs_invitations
from townsquare.orgs import schemas as orgs_schemas
from townsquare.ratelimit import Limiter, client_ip

router = APIRouter(route_class=TransactionalRoute)


class AccountDeletion(RequestBody):
    password: auth_schemas.AnyPassword
    """The account's current password."""


@router.delete(
    "/auth/me",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["auth"],
    responses={
        400: {"description": "`invalid_current_password`"},
        401: {"description": "`not_authenticated`"},
        409: {"description": "`last_owner`, with `organizations: [{id, slug, name}]`"},
        429: {"description": "Too many attempts; wait for Retry-After seconds"},
    },
)
async def delete_account(
    body: AccountDeletion,
    user: CurrentUser,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    limiter: Limiter,
) -> None:
    """Delete the account, with its password. Refused (409 `last_owner`, naming the
    organizations) while the user is the last owner of one. Sessions, tokens, memberships
    and personal data go; articles, chat messages and audit entries stay with an
    anonymous "Deleted user" (see the README). The session cookies are cleared."""
    await limiter.consume(
        (settings.RATE_LIMIT_CHANGE_PASSWORD, ("delete-account", "ip", client_ip(request))),
        (settings.RATE_LIMIT_CHANGE_PASSWORD, ("delete-account", "account", str(user.id))),
    )
    await deletion.delete_account(session, settings, user, password=body.password)
    clear_session_cookies(response, settings)


@router.get(
    "/me/export",
    response_model=export_schemas.AccountExport,
    tags=["me"],
    responses={
        200: {"description": "A JSON download (`Content-Disposition: attachment`)"},
        401: {"description": "`not_authenticated`"},
    },
)
async def export_my_data(
    auth: CurrentAuth, response: Response, session: DbSession, settings: AppSettings
) -> export_schemas.AccountExport:
    """Everything Townsquare holds about the caller, as a JSON file: profile, memberships,
    live sessions (no token hashes), articles authored (ids and titles), support
    conversations opened and messages sent (no internal notes), media uploaded (metadata),
    shift signups, invitations to their address and audit entries about them. No secret and nothing
    private of other people."""
    exported = await export.build_export(session, settings, auth.user, current=auth.session)
    day = exported.exported_at.strftime("%Y-%m-%d")
    response.headers["Content-Disposition"] = f'attachment; filename="townsquare-export-{day}.json"'
    response.headers["Cache-Control"] = "no-store"
    return exported


@router.get(
    "/me/invitations",
    response_model=Page[invitations.MyInvitation],
    tags=["me"],
    responses={
        401: {"description": "`not_authenticated`"},
        403: {"description": "`email_not_verified`"},
    },
)
async def my_invitations(
    user: CurrentUser,
    session: DbSession,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[invitations.MyInvitation]:
    """Pending, unexpired invitations sent to the caller's verified address, from
    organizations they are not in yet, newest first (organization, role, inviter, expiry).
    An unverified address answers 403 `email_not_verified`."""
    items, total = await invitations.list_my_invitations(session, user, params)
    return Page[invitations.MyInvitation].of(items, params, total)


@router.post(
    "/me/invitations/{invitation_id}/accept",
    response_model=orgs_schemas.InvitationAccepted,
    tags=["me"],
    responses={
        401: {"description": "`not_authenticated`"},
        403: {"description": "`email_not_verified` or `csrf_failed`"},
        404: {"description": "`invitation_not_found` (also one sent to another address)"},
        409: {"description": "`invitation_already_accepted` or `already_member`"},
        410: {"description": "`invitation_expired` or `invitation_revoked`"},
    },
)
async def accept_my_invitation(
    invitation_id: uuid.UUID, user: CurrentUser, session: DbSession
) -> orgs_schemas.InvitationAccepted:
    """Join the organization of an invitation listed by `GET /me/invitations`; the same
    rules as `POST /invitations/{token}/accept`."""
    org, membership = await orgs_invitations.accept_invitation_by_id(session, user, invitation_id)
    return orgs_invitations.accepted(org, membership)
