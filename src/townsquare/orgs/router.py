"""Organizations, members, invitations, modules and the audit log (`/api/v1/orgs/...`).

`{org}` is the organization's slug. A caller who is not a member gets 404
`organization_not_found`; a member whose role lacks the permission gets 403
`permission_denied` (see `orgs/permissions.py`).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from townsquare.auth.deps import CurrentUser
from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.kit.fields import SearchText
from townsquare.kit.pagination import Page, PageParams, page_params
from townsquare.orgs import audit, invitations, members, schemas, service
from townsquare.orgs.deps import (
    AuditReader,
    MembersManager,
    MembersReader,
    ModulesManager,
    OrgAdmin,
    OrgOwner,
    OrgReader,
    OwnershipTransferrer,
)
from townsquare.orgs.enums import InvitationStatus, MemberRole
from townsquare.orgs.responses import (
    INVITATION_NOT_FOUND,
    MEMBER_NOT_FOUND,
    ORG_ERRORS,
    SLUG_TAKEN,
    errors,
)

router = APIRouter(route_class=TransactionalRoute)

Paging = Annotated[PageParams, Depends(page_params)]
MemberId = Annotated[uuid.UUID, Path(description="A membership id of this organization.")]
InvitationId = Annotated[uuid.UUID, Path(description="An invitation id of this organization.")]
InvitationToken = Annotated[
    str, Path(min_length=1, max_length=128, description="The token from the invitation email.")
]

ORGS = "organizations"
MEMBERS = "members"
INVITATIONS = "invitations"


# --- organizations ----------------------------------------------------------------------


@router.post(
    "/orgs",
    status_code=201,
    response_model=schemas.Organization,
    tags=[ORGS],
    responses=errors(400, 401, s409=SLUG_TAKEN),
)
async def create_organization(
    body: schemas.OrganizationCreate, user: CurrentUser, session: DbSession, settings: AppSettings
) -> schemas.Organization:
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
    return await service.present(session, org, MemberRole.owner)


@router.get(
    "/orgs", response_model=Page[schemas.MyOrganization], tags=[ORGS], responses=errors(401)
)
async def list_my_organizations(
    user: CurrentUser, session: DbSession, params: Paging
) -> Page[schemas.MyOrganization]:
    """The caller's organizations, by name, with the caller's role in each."""
    items, total = await service.list_my_organizations(session, user, params)
    return Page[schemas.MyOrganization].of(items, params, total)


@router.get("/orgs/{org}", response_model=schemas.Organization, tags=[ORGS], responses=ORG_ERRORS)
async def get_organization(ctx: OrgReader, session: DbSession) -> schemas.Organization:
    """The organization, its modules and the caller's role."""
    return await service.present(session, ctx.org, ctx.role)


@router.patch(
    "/orgs/{org}",
    response_model=schemas.Organization,
    tags=[ORGS],
    responses=errors(400, 401, 403, 404, s409=SLUG_TAKEN),
)
async def update_organization(
    body: schemas.OrganizationUpdate, ctx: OrgAdmin, session: DbSession
) -> schemas.Organization:
    """Change name, slug, avatar_url (null clears it) or time zone; audited. `null` for
    name, slug or timezone answers 422 naming the field."""
    org = await service.update_organization(session, ctx, body.model_dump(exclude_unset=True))
    return await service.present(session, org, ctx.role)


@router.delete("/orgs/{org}", status_code=204, tags=[ORGS], responses=ORG_ERRORS)
async def delete_organization(ctx: OrgOwner, session: DbSession) -> None:
    """Delete the organization and everything it owns (owners only)."""
    await service.delete_organization(session, ctx)


# --- members ----------------------------------------------------------------------------


@router.get(
    "/orgs/{org}/members",
    response_model=Page[schemas.Member],
    tags=[MEMBERS],
    responses=ORG_ERRORS,
)
async def list_members(
    ctx: MembersReader,
    session: DbSession,
    params: Paging,
    role: Annotated[MemberRole | None, Query(description="Only members with this role.")] = None,
    q: Annotated[SearchText | None, Query(description="Part of a name or email.")] = None,
) -> Page[schemas.Member]:
    """Members, oldest first."""
    items, total = await members.list_members(session, ctx, params, role=role, q=q)
    return Page[schemas.Member].of(items, params, total)


@router.patch(
    "/orgs/{org}/members/{member_id}",
    response_model=schemas.Member,
    tags=[MEMBERS],
    responses=errors(400, 401, 403, s404=MEMBER_NOT_FOUND, s409="`last_owner`"),
)
async def change_member_role(
    member_id: MemberId, body: schemas.MemberRoleUpdate, ctx: MembersManager, session: DbSession
) -> schemas.Member:
    """Change another member's role. Never one's own (403 `cannot_change_own_role`), never to
    owner (403 `cannot_grant_owner`: use transfer-ownership), never above one's own role
    (403 `role_above_own`) or on a member ranked above oneself (403
    `cannot_manage_higher_role`), never the last owner away (409 `last_owner`)."""
    return await members.change_member_role(session, ctx, member_id, body.role)


@router.delete(
    "/orgs/{org}/members/{member_id}",
    status_code=204,
    tags=[MEMBERS],
    responses=errors(401, 403, s404=MEMBER_NOT_FOUND, s409="`last_owner`"),
)
async def remove_member(member_id: MemberId, ctx: MembersManager, session: DbSession) -> None:
    """Remove a member ranked no higher than the caller (removing oneself is leaving); the
    last owner stays (409 `last_owner`)."""
    await members.remove_member(session, ctx, member_id)


@router.post(
    "/orgs/{org}/leave",
    status_code=204,
    tags=[MEMBERS],
    responses=errors(401, 403, 404, s409="`last_owner`"),
)
async def leave_organization(ctx: OrgReader, session: DbSession) -> None:
    """Leave the organization. The last owner must transfer ownership first (409 `last_owner`)."""
    await members.leave_organization(session, ctx)


@router.post(
    "/orgs/{org}/transfer-ownership",
    response_model=schemas.OwnershipTransferred,
    tags=[MEMBERS],
    responses=errors(400, 401, 403, s404=MEMBER_NOT_FOUND, s409="`transfer_target_not_admin`"),
)
async def transfer_ownership(
    body: schemas.OwnershipTransfer, ctx: OwnershipTransferrer, session: DbSession
) -> schemas.OwnershipTransferred:
    """Make an existing admin an owner and the caller an admin, in one transaction
    (409 `transfer_target_not_admin` otherwise)."""
    return await members.transfer_ownership(session, ctx, body.member_id)


# --- invitations ------------------------------------------------------------------------


@router.post(
    "/orgs/{org}/invitations",
    status_code=201,
    response_model=schemas.Invitation,
    tags=[INVITATIONS],
    responses=errors(
        400, 401, 403, 404, s409="`invitation_exists` (with `invitation_id`) or `already_member`"
    ),
)
async def create_invitation(
    body: schemas.InvitationCreate, ctx: MembersManager, session: DbSession, settings: AppSettings
) -> schemas.Invitation:
    """Invite an email address with a role (not owner, not above the inviter's). The email,
    sent through the outbox, links to `INVITATION_URL` (by default
    `{PUBLIC_URL}/invitations/{token}`); the client app's page there
    previews with `GET /api/v1/invitations/{token}` and accepts with `POST
    /api/v1/invitations/{token}/accept`. The token is not returned here. A live pending
    invitation to the same address answers 409 `invitation_exists` (with `invitation_id`:
    resend or revoke it); an expired one is replaced. A member's address answers 409
    `already_member`."""
    invitation, _token = await invitations.create_invitation(
        session, ctx, email=body.email, role=body.role, settings=settings
    )
    return invitations.present(invitation)


@router.get(
    "/orgs/{org}/invitations",
    response_model=Page[schemas.Invitation],
    tags=[INVITATIONS],
    responses=ORG_ERRORS,
)
async def list_invitations(
    ctx: MembersManager,
    session: DbSession,
    params: Paging,
    status: Annotated[InvitationStatus | None, Query(description="Only this status.")] = None,
) -> Page[schemas.Invitation]:
    """Invitations, newest first. A pending invitation past its expiry is `expired`."""
    items, total = await invitations.list_invitations(session, ctx, params, status=status)
    return Page[schemas.Invitation].of([invitations.present(i) for i in items], params, total)


@router.post(
    "/orgs/{org}/invitations/{invitation_id}/resend",
    response_model=schemas.Invitation,
    tags=[INVITATIONS],
    responses=errors(
        401,
        403,
        s404=INVITATION_NOT_FOUND,
        s409="`invitation_already_accepted`, `invitation_exists` or `already_member`",
        s410="`invitation_revoked`",
    ),
)
async def resend_invitation(
    invitation_id: InvitationId, ctx: MembersManager, session: DbSession, settings: AppSettings
) -> schemas.Invitation:
    """Email a pending or expired invitation again with a new token and expiry; the old link
    stops working."""
    invitation, _token = await invitations.resend_invitation(
        session, ctx, invitation_id, settings=settings
    )
    return invitations.present(invitation)


@router.delete(
    "/orgs/{org}/invitations/{invitation_id}",
    status_code=204,
    tags=[INVITATIONS],
    responses=errors(401, 403, s404=INVITATION_NOT_FOUND, s409="`invitation_already_accepted`"),
)
async def revoke_invitation(
    invitation_id: InvitationId, ctx: MembersManager, session: DbSession
) -> None:
    """Revoke an invitation; its link answers 410 `invitation_revoked` from then on."""
    await invitations.revoke_invitation(session, ctx, invitation_id)


@router.get(
    "/invitations/{token}",
    response_model=schemas.InvitationPreview,
    tags=[INVITATIONS],
    responses=errors(s404="`invitation_not_found`"),
)
async def preview_invitation(
    token: InvitationToken, session: DbSession
) -> schemas.InvitationPreview:
    """What an invitation link is for: organization, role, inviter, expiry and status. No
    sign-in needed; an unknown token answers 404 `invitation_not_found`."""
    return await invitations.preview_invitation(session, token)


@router.post(
    "/invitations/{token}/accept",
    response_model=schemas.InvitationAccepted,
    tags=[INVITATIONS],
    responses=errors(
        401,
        410,
        s403="`invitation_email_mismatch`, `email_not_verified` or `csrf_failed`",
        s404="`invitation_not_found`",
        s409="`invitation_already_accepted` or `already_member`",
    ),
)
async def accept_invitation(
    token: InvitationToken, user: CurrentUser, session: DbSession
) -> schemas.InvitationAccepted:
    """Join the organization. Needs a signed-in user whose verified email is the invited
    address. Errors: 404 `invitation_not_found`, 410 `invitation_expired` /
    `invitation_revoked`, 409 `invitation_already_accepted` / `already_member`, 403
    `invitation_email_mismatch` / `email_not_verified`."""
    org, membership = await invitations.accept_invitation(session, user, token)
    return invitations.accepted(org, membership)


# --- modules and audit log --------------------------------------------------------------


@router.get(
    "/orgs/{org}/modules", response_model=schemas.Modules, tags=[ORGS], responses=ORG_ERRORS
)
async def get_modules(ctx: ModulesManager, session: DbSession) -> schemas.Modules:
    """The modules switched on (`cms`, `events`, `support`). A module that is off answers
    403 `module_disabled` on its endpoints."""
    return schemas.Modules(modules=await service.get_modules(session, ctx))


@router.put(
    "/orgs/{org}/modules",
    response_model=schemas.Modules,
    tags=[ORGS],
    responses=errors(400, 401, 403, 404),
)
async def set_modules(
    body: schemas.ModulesUpdate, ctx: ModulesManager, session: DbSession
) -> schemas.Modules:
    """Switch exactly these modules on and the others off; audited."""
    return schemas.Modules(modules=await service.set_modules(session, ctx, body.modules))


@router.get(
    "/orgs/{org}/audit-log",
    response_model=Page[schemas.AuditLogEntry],
    tags=[ORGS],
    responses=ORG_ERRORS,
)
async def list_audit_log(
    ctx: AuditReader,
    session: DbSession,
    params: Paging,
    action: Annotated[
        str | None, Query(max_length=64, pattern=r"^[a-z_.]+$", description="e.g. member.removed")
    ] = None,
) -> Page[schemas.AuditLogEntry]:
    """Who did what, newest first: role changes, removals, invitations, ownership, modules,
    organization changes, and other domains' entries (publishing, assignments)."""
    items, total = await audit.list_entries(session, ctx, params, action=action)
    return Page[schemas.AuditLogEntry].of(items, params, total)
