"""Organizations, members, invitations, modules and the audit log (`/api/v1/orgs/...`).

`{org}` is the organization's slug. A caller who is not a member gets 404
`organization_not_found`; a member whose role lacks the permission gets 403
`permission_denied` (see `orgs/permissions.py`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from townsquare.auth.deps import CurrentUser
from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.kit import clock
from townsquare.kit.pagination import Page, PageParams, page_params
from townsquare.orgs import service
from townsquare.orgs.deps import OrgContext, org_guard
from townsquare.orgs.enums import InvitationStatus, MemberRole, Permission
from townsquare.orgs.models import Invitation
from townsquare.orgs.schemas import (
    AuditLogEntryRead,
    InvitationAccepted,
    InvitationCreate,
    InvitationPreview,
    InvitationRead,
    MemberRead,
    MemberRoleUpdate,
    ModulesRead,
    ModulesUpdate,
    MyOrganization,
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
    OwnershipTransfer,
    OwnershipTransferred,
    SearchText,
)

router = APIRouter(route_class=TransactionalRoute)

Paging = Annotated[PageParams, Depends(page_params)]
MemberId = Annotated[uuid.UUID, Path(description="A membership id of this organization.")]
InvitationId = Annotated[uuid.UUID, Path(description="An invitation id of this organization.")]
InvitationToken = Annotated[
    str, Path(min_length=1, max_length=128, description="The token from the invitation email.")
]

_ERROR_DESCRIPTIONS = {
    400: "`bad_request`: the body is not valid JSON",
    401: "`not_authenticated`: no live session",
    403: "`permission_denied` (role), `csrf_failed`, or a rule named in `code`",
    404: "`organization_not_found`: no such organization, or the caller is not a member",
    409: "a conflict named in `code`",
    410: "`invitation_expired` or `invitation_revoked`",
}


def _errors(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem+json answers of a route."""
    found: dict[int | str, dict[str, Any]] = {
        status: {"description": _ERROR_DESCRIPTIONS[status]} for status in statuses
    }
    for key, description in described.items():
        found[int(key.removeprefix("s"))] = {"description": description}
    return found


ORG_ERRORS = _errors(401, 403, 404)

ORGS = "organizations"
MEMBERS = "members"
INVITATIONS = "invitations"


# --- organizations ----------------------------------------------------------------------


@router.post(
    "/orgs",
    status_code=201,
    response_model=OrganizationRead,
    tags=[ORGS],
    responses=_errors(400, 401, s409="`slug_taken`, with a free `suggestion`"),
)
async def create_organization(
    body: OrganizationCreate, user: CurrentUser, session: DbSession, settings: AppSettings
) -> OrganizationRead:
    """Create an organization; the caller becomes its owner. It starts with the modules in
    `DEFAULT_MODULES` and the given time zone or `DEFAULT_TIMEZONE`. Without `slug`, one is
    made from the name (with a `-2`, `-3`... suffix when taken); a taken explicit slug
    answers 409 `slug_taken` with a free `suggestion`."""
    org = await service.create_organization(
        session,
        user,
        name=body.name,
        slug=body.slug,
        avatar_url=body.avatar_url,
        timezone=body.timezone,
        settings=settings,
    )
    return await service.organization_read(session, org, MemberRole.owner)


@router.get("/orgs", response_model=Page[MyOrganization], tags=[ORGS], responses=_errors(401))
async def list_my_organizations(
    user: CurrentUser, session: DbSession, params: Paging
) -> Page[MyOrganization]:
    """The caller's organizations, by name, with the caller's role in each."""
    items, total = await service.list_my_organizations(session, user.id, params)
    return Page[MyOrganization](
        items=items, page=params.page, per_page=params.per_page, total=total
    )


@router.get("/orgs/{org}", response_model=OrganizationRead, tags=[ORGS], responses=ORG_ERRORS)
async def get_organization(
    ctx: Annotated[OrgContext, org_guard(Permission.org_read)], session: DbSession
) -> OrganizationRead:
    """The organization, its modules and the caller's role."""
    return await service.organization_read(session, ctx.org, ctx.role)


@router.patch(
    "/orgs/{org}",
    response_model=OrganizationRead,
    tags=[ORGS],
    responses=_errors(400, 401, 403, 404, s409="`slug_taken`, with a free `suggestion`"),
)
async def update_organization(
    body: OrganizationUpdate,
    ctx: Annotated[OrgContext, org_guard(Permission.org_update)],
    session: DbSession,
) -> OrganizationRead:
    """Change name, slug, avatar_url (null clears it) or time zone; audited."""
    org = await service.update_organization(session, ctx, body.model_dump(exclude_unset=True))
    return await service.organization_read(session, org, ctx.role)


@router.delete("/orgs/{org}", status_code=204, tags=[ORGS], responses=ORG_ERRORS)
async def delete_organization(
    ctx: Annotated[OrgContext, org_guard(Permission.org_delete)], session: DbSession
) -> None:
    """Delete the organization and everything it owns (owners only)."""
    await service.delete_organization(session, ctx)


# --- members ----------------------------------------------------------------------------


@router.get(
    "/orgs/{org}/members", response_model=Page[MemberRead], tags=[MEMBERS], responses=ORG_ERRORS
)
async def list_members(
    ctx: Annotated[OrgContext, org_guard(Permission.members_read)],
    session: DbSession,
    params: Paging,
    role: Annotated[MemberRole | None, Query(description="Only members with this role.")] = None,
    q: Annotated[SearchText | None, Query(description="Part of a name or email.")] = None,
) -> Page[MemberRead]:
    """Members, oldest first."""
    items, total = await service.list_members(session, ctx.org.id, params, role=role, q=q)
    return Page[MemberRead](items=items, page=params.page, per_page=params.per_page, total=total)


@router.patch(
    "/orgs/{org}/members/{member_id}",
    response_model=MemberRead,
    tags=[MEMBERS],
    responses=_errors(
        400, 401, 403, s404="`organization_not_found` or `member_not_found`", s409="`last_owner`"
    ),
)
async def change_member_role(
    member_id: MemberId,
    body: MemberRoleUpdate,
    ctx: Annotated[OrgContext, org_guard(Permission.members_manage)],
    session: DbSession,
) -> MemberRead:
    """Change another member's role. Never one's own (403 `cannot_change_own_role`), never to
    owner (403 `cannot_grant_owner`: use transfer-ownership), never above one's own role
    (403 `role_above_own`) or on a member ranked above oneself (403
    `cannot_manage_higher_role`), never the last owner away (409 `last_owner`)."""
    return await service.change_member_role(session, ctx, member_id, body.role)


@router.delete(
    "/orgs/{org}/members/{member_id}",
    status_code=204,
    tags=[MEMBERS],
    responses=_errors(
        401, 403, s404="`organization_not_found` or `member_not_found`", s409="`last_owner`"
    ),
)
async def remove_member(
    member_id: MemberId,
    ctx: Annotated[OrgContext, org_guard(Permission.members_manage)],
    session: DbSession,
) -> None:
    """Remove a member ranked no higher than the caller (removing oneself is leaving); the
    last owner stays (409 `last_owner`)."""
    await service.remove_member(session, ctx, member_id)


@router.post(
    "/orgs/{org}/leave",
    status_code=204,
    tags=[MEMBERS],
    responses=_errors(401, 403, 404, s409="`last_owner`"),
)
async def leave_organization(
    ctx: Annotated[OrgContext, org_guard(Permission.org_read)], session: DbSession
) -> None:
    """Leave the organization. The last owner must transfer ownership first (409 `last_owner`)."""
    await service.leave_organization(session, ctx)


@router.post(
    "/orgs/{org}/transfer-ownership",
    response_model=OwnershipTransferred,
    tags=[MEMBERS],
    responses=_errors(
        400,
        401,
        403,
        s404="`organization_not_found` or `member_not_found`",
        s409="`transfer_target_not_admin`",
    ),
)
async def transfer_ownership(
    body: OwnershipTransfer,
    ctx: Annotated[OrgContext, org_guard(Permission.ownership_transfer)],
    session: DbSession,
) -> OwnershipTransferred:
    """Make an existing admin an owner and the caller an admin, in one transaction
    (409 `transfer_target_not_admin` otherwise)."""
    transfer = await service.transfer_ownership(session, ctx, body.member_id)
    return OwnershipTransferred(
        new_owner=transfer.new_owner, previous_owner=transfer.previous_owner
    )


# --- invitations ------------------------------------------------------------------------


def _invitation_read(invitation: Invitation) -> InvitationRead:
    return InvitationRead(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        status=invitation.effective_status(clock.now()),
        expires_at=invitation.expires_at,
        invited_by_id=invitation.invited_by_id,
        accepted_by_id=invitation.accepted_by_id,
        accepted_at=invitation.accepted_at,
        revoked_at=invitation.revoked_at,
        created_at=invitation.created_at,
    )


@router.post(
    "/orgs/{org}/invitations",
    status_code=201,
    response_model=InvitationRead,
    tags=[INVITATIONS],
    responses=_errors(
        400, 401, 403, 404, s409="`invitation_exists` (with `invitation_id`) or `already_member`"
    ),
)
async def create_invitation(
    body: InvitationCreate,
    ctx: Annotated[OrgContext, org_guard(Permission.members_manage)],
    session: DbSession,
    settings: AppSettings,
) -> InvitationRead:
    """Invite an email address with a role (not owner, not above the inviter's). The email,
    sent through the outbox, links to `INVITATION_URL` (by default
    `{PUBLIC_URL}/invitations/{token}`); the client app's page there
    previews with `GET /api/v1/invitations/{token}` and accepts with `POST
    /api/v1/invitations/{token}/accept`. The token is not returned here. A live pending
    invitation to the same address answers 409 `invitation_exists` (with `invitation_id`:
    resend or revoke it); an expired one is replaced. A member's address answers 409
    `already_member`."""
    invitation, _token = await service.create_invitation(
        session, ctx, email=body.email, role=body.role, settings=settings
    )
    return _invitation_read(invitation)


@router.get(
    "/orgs/{org}/invitations",
    response_model=Page[InvitationRead],
    tags=[INVITATIONS],
    responses=ORG_ERRORS,
)
async def list_invitations(
    ctx: Annotated[OrgContext, org_guard(Permission.members_manage)],
    session: DbSession,
    params: Paging,
    status: Annotated[InvitationStatus | None, Query(description="Only this status.")] = None,
) -> Page[InvitationRead]:
    """Invitations, newest first. A pending invitation past its expiry is `expired`."""
    items, total = await service.list_invitations(session, ctx.org.id, params, status=status)
    return Page[InvitationRead](
        items=[_invitation_read(i) for i in items],
        page=params.page,
        per_page=params.per_page,
        total=total,
    )


@router.post(
    "/orgs/{org}/invitations/{invitation_id}/resend",
    response_model=InvitationRead,
    tags=[INVITATIONS],
    responses=_errors(
        401,
        403,
        s404="`organization_not_found` or `invitation_not_found`",
        s409="`invitation_already_accepted`, `invitation_exists` or `already_member`",
        s410="`invitation_revoked`",
    ),
)
async def resend_invitation(
    invitation_id: InvitationId,
    ctx: Annotated[OrgContext, org_guard(Permission.members_manage)],
    session: DbSession,
    settings: AppSettings,
) -> InvitationRead:
    """Email a pending or expired invitation again with a new token and expiry; the old link
    stops working."""
    invitation, _token = await service.resend_invitation(
        session, ctx, invitation_id, settings=settings
    )
    return _invitation_read(invitation)


@router.delete(
    "/orgs/{org}/invitations/{invitation_id}",
    status_code=204,
    tags=[INVITATIONS],
    responses=_errors(
        401,
        403,
        s404="`organization_not_found` or `invitation_not_found`",
        s409="`invitation_already_accepted`",
    ),
)
async def revoke_invitation(
    invitation_id: InvitationId,
    ctx: Annotated[OrgContext, org_guard(Permission.members_manage)],
    session: DbSession,
) -> None:
    """Revoke an invitation; its link answers 410 `invitation_revoked` from then on."""
    await service.revoke_invitation(session, ctx, invitation_id)


@router.get(
    "/invitations/{token}",
    response_model=InvitationPreview,
    tags=[INVITATIONS],
    responses=_errors(s404="`invitation_not_found`"),
)
async def preview_invitation(token: InvitationToken, session: DbSession) -> InvitationPreview:
    """What an invitation link is for: organization, role, inviter, expiry and status. No
    sign-in needed; an unknown token answers 404 `invitation_not_found`."""
    return await service.preview_invitation(session, token)


@router.post(
    "/invitations/{token}/accept",
    response_model=InvitationAccepted,
    tags=[INVITATIONS],
    responses=_errors(
        401,
        410,
        s403="`invitation_email_mismatch`, `email_not_verified` or `csrf_failed`",
        s404="`invitation_not_found`",
        s409="`invitation_already_accepted` or `already_member`",
    ),
)
async def accept_invitation(
    token: InvitationToken, user: CurrentUser, session: DbSession
) -> InvitationAccepted:
    """Join the organization. Needs a signed-in user whose verified email is the invited
    address. Errors: 404 `invitation_not_found`, 410 `invitation_expired` /
    `invitation_revoked`, 409 `invitation_already_accepted` / `already_member`, 403
    `invitation_email_mismatch` / `email_not_verified`."""
    org, membership = await service.accept_invitation(session, user, token)
    return InvitationAccepted(
        organization=MyOrganization(
            id=org.id,
            name=org.name,
            slug=org.slug,
            avatar_url=org.avatar_url,
            role=membership.role,
        ),
        member_id=membership.id,
    )


# --- modules and audit log --------------------------------------------------------------


@router.get("/orgs/{org}/modules", response_model=ModulesRead, tags=[ORGS], responses=ORG_ERRORS)
async def get_modules(
    ctx: Annotated[OrgContext, org_guard(Permission.modules_manage)], session: DbSession
) -> ModulesRead:
    """The modules switched on (`cms`, `events`, `support`). A module that is off answers
    403 `module_disabled` on its endpoints."""
    return ModulesRead(modules=await service.get_modules(session, ctx.org.id))


@router.put(
    "/orgs/{org}/modules",
    response_model=ModulesRead,
    tags=[ORGS],
    responses=_errors(400, 401, 403, 404),
)
async def set_modules(
    body: ModulesUpdate,
    ctx: Annotated[OrgContext, org_guard(Permission.modules_manage)],
    session: DbSession,
) -> ModulesRead:
    """Switch exactly these modules on and the others off; audited."""
    return ModulesRead(modules=await service.set_modules(session, ctx, body.modules))


@router.get(
    "/orgs/{org}/audit-log",
    response_model=Page[AuditLogEntryRead],
    tags=[ORGS],
    responses=ORG_ERRORS,
)
async def list_audit_log(
    ctx: Annotated[OrgContext, org_guard(Permission.audit_read)],
    session: DbSession,
    params: Paging,
    action: Annotated[
        str | None, Query(max_length=64, pattern=r"^[a-z_.]+$", description="e.g. member.removed")
    ] = None,
) -> Page[AuditLogEntryRead]:
    """Who did what, newest first: role changes, removals, invitations, ownership, modules,
    organization changes, and other domains' entries (publishing, assignments)."""
    items, total = await service.list_audit_log(session, ctx.org.id, params, action=action)
    return Page[AuditLogEntryRead](
        items=items, page=params.page, per_page=params.per_page, total=total
    )
