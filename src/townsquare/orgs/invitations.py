"""Invitations by email: invite, list, resend, revoke, and the link's preview and accept.

Only a token's hash is stored. At most one invitation per address and organization is
pending at a time (`uq_invitations_pending_email`), also when invites race.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from townsquare.auth import service as auth_service
from townsquare.auth.errors import EmailNotVerified
from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db import flush_or_conflict
from townsquare.email import service as email_service
from townsquare.kit import clock, tokens
from townsquare.kit.fields import normalize_email
from townsquare.kit.pagination import PageParams, paginate
from townsquare.orgs import audit, schemas
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import InvitationStatus, MemberRole
from townsquare.orgs.errors import (
    AlreadyMember,
    CannotGrantOwner,
    CannotManageHigherRole,
    InvitationAlreadyAccepted,
    InvitationEmailMismatch,
    InvitationExists,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    RoleAboveOwn,
)
from townsquare.orgs.models import Invitation, Membership, Organization

INVITATION_EMAIL_TEMPLATE = "invitation"
_PENDING_EMAIL = "uq_invitations_pending_email"
_MEMBERSHIP = "uq_memberships_organization_id_user_id"


def present(invitation: Invitation) -> schemas.Invitation:
    """The invitation as the API shows it (a pending one past its expiry reads as expired)."""
    return schemas.Invitation(
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


def accept_url(settings: Settings, token: str) -> str:
    """The link in the invitation email (`INVITATION_URL`): the client app's page for it."""
    return settings.INVITATION_URL.format(public_url=settings.PUBLIC_URL.rstrip("/"), token=token)


async def _is_member_by_email(
    session: AsyncSession, organization_id: uuid.UUID, email: str
) -> bool:
    found = await session.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == organization_id, func.lower(User.email) == email)
        .limit(1)
    )
    return found is not None


def _check_invited_role(actor_role: MemberRole, role: MemberRole) -> None:
    if role == MemberRole.owner:
        raise CannotGrantOwner()
    if role.rank > actor_role.rank:
        raise RoleAboveOwn()


async def _send_invitation_email(
    session: AsyncSession,
    ctx: OrgContext,
    invitation: Invitation,
    token: str,
    *,
    settings: Settings,
) -> None:
    await email_service.enqueue_email(
        session,
        to=invitation.email,
        template=INVITATION_EMAIL_TEMPLATE,
        context={
            "organization_name": ctx.org.name,
            "inviter_name": ctx.user.display_name,
            "role": invitation.role.value,
            "accept_url": accept_url(settings, token),
            "expires_at": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        },
        settings=settings,
    )


async def create_invitation(
    session: AsyncSession,
    ctx: OrgContext,
    *,
    email: str,
    role: MemberRole,
    settings: Settings,
) -> tuple[Invitation, str]:
    """Invite `email` with `role` and queue the email; returns the invitation and its token.

    A live pending invitation to the same address answers 409 `invitation_exists`; an expired
    one is superseded. Members answer 409 `already_member`.
    """
    auth_service.require_verified_email(ctx.user)
    _check_invited_role(ctx.role, role)
    address = normalize_email(email)
    if await _is_member_by_email(session, ctx.org.id, address):
        raise AlreadyMember()
    now = clock.now()
    existing = await session.scalar(
        select(Invitation)
        .where(
            Invitation.organization_id == ctx.org.id,
            Invitation.email == address,
            Invitation.status == InvitationStatus.pending,
        )
        .with_for_update()
    )
    if existing is not None:
        if existing.expires_at > now:
            raise InvitationExists(extra={"invitation_id": str(existing.id)})
        existing.status = InvitationStatus.expired
        await session.flush()
    token = tokens.new_token()
    invitation = Invitation(
        organization_id=ctx.org.id,
        email=address,
        role=role,
        status=InvitationStatus.pending,
        token_hash=tokens.hash_token(token),
        expires_at=now + timedelta(seconds=settings.INVITATION_TTL_SECONDS),
        invited_by_id=ctx.user.id,
    )
    await flush_or_conflict(session, {_PENDING_EMAIL: InvitationExists}, add=[invitation])
    await _send_invitation_email(session, ctx, invitation, token, settings=settings)
    await audit.record(
        session,
        ctx,
        "invitation.created",
        target=("invitation", invitation.id),
        data={"email": address, "role": role.value},
    )
    return invitation, token


def invitation_status_filter(status: InvitationStatus, now: datetime) -> list[Any]:
    """SQL conditions for the status a caller sees (pending past expiry reads as expired)."""
    if status == InvitationStatus.pending:
        return [Invitation.status == InvitationStatus.pending, Invitation.expires_at > now]
    if status == InvitationStatus.expired:
        return [
            or_(
                Invitation.status == InvitationStatus.expired,
                (Invitation.status == InvitationStatus.pending) & (Invitation.expires_at <= now),
            )
        ]
    return [Invitation.status == status]


async def list_invitations(
    session: AsyncSession,
    ctx: OrgContext,
    params: PageParams,
    *,
    status: InvitationStatus | None = None,
) -> tuple[list[Invitation], int]:
    """One page of the organization's invitations, newest first, optionally by status."""
    statement = (
        select(Invitation)
        .where(Invitation.organization_id == ctx.org.id)
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
    )
    if status is not None:
        statement = statement.where(*invitation_status_filter(status, clock.now()))
    return await paginate(session, statement, params)


async def _get_invitation_for_update(
    session: AsyncSession, ctx: OrgContext, invitation_id: uuid.UUID
) -> Invitation:
    invitation = await session.scalar(
        select(Invitation)
        .where(Invitation.id == invitation_id, Invitation.organization_id == ctx.org.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if invitation is None:
        raise InvitationNotFound()
    return invitation


async def resend_invitation(
    session: AsyncSession, ctx: OrgContext, invitation_id: uuid.UUID, *, settings: Settings
) -> tuple[Invitation, str]:
    """Issue a new token and expiry for a pending or expired invitation and email it again;
    the old link stops working."""
    auth_service.require_verified_email(ctx.user)
    invitation = await _get_invitation_for_update(session, ctx, invitation_id)
    if invitation.status == InvitationStatus.accepted:
        raise InvitationAlreadyAccepted()
    if invitation.status == InvitationStatus.revoked:
        raise InvitationRevoked()
    if invitation.role.rank > ctx.role.rank:
        raise CannotManageHigherRole()
    if await _is_member_by_email(session, ctx.org.id, invitation.email):
        raise AlreadyMember()
    token = tokens.new_token()

    def renew() -> None:
        invitation.token_hash = tokens.hash_token(token)
        invitation.expires_at = clock.now() + timedelta(seconds=settings.INVITATION_TTL_SECONDS)
        invitation.status = InvitationStatus.pending

    # An expired invitation turns pending again, which a newer pending one may forbid.
    await flush_or_conflict(session, {_PENDING_EMAIL: InvitationExists}, apply=renew)
    await _send_invitation_email(session, ctx, invitation, token, settings=settings)
    await audit.record(
        session,
        ctx,
        "invitation.resent",
        target=("invitation", invitation.id),
        data={"email": invitation.email, "role": invitation.role.value},
    )
    return invitation, token


async def revoke_invitation(
    session: AsyncSession, ctx: OrgContext, invitation_id: uuid.UUID
) -> None:
    """Revoke an invitation that was not accepted; revoking twice changes nothing."""
    invitation = await _get_invitation_for_update(session, ctx, invitation_id)
    if invitation.status == InvitationStatus.accepted:
        raise InvitationAlreadyAccepted()
    if invitation.status == InvitationStatus.revoked:
        return
    if invitation.role.rank > ctx.role.rank:
        raise CannotManageHigherRole()
    invitation.status = InvitationStatus.revoked
    invitation.revoked_at = clock.now()
    await session.flush()
    await audit.record(
        session,
        ctx,
        "invitation.revoked",
        target=("invitation", invitation.id),
        data={"email": invitation.email, "role": invitation.role.value},
    )


async def preview_invitation(session: AsyncSession, token: str) -> schemas.InvitationPreview:
    """What an invitation link shows before it is accepted (no sign-in needed)."""
    inviter = aliased(User)
    row = (
        await session.execute(
            select(Invitation, Organization, inviter.display_name)
            .join(Organization, Organization.id == Invitation.organization_id)
            .outerjoin(inviter, inviter.id == Invitation.invited_by_id)
            .where(Invitation.token_hash == tokens.hash_token(token))
        )
    ).first()
    if row is None:
        raise InvitationNotFound()
    invitation, org, inviter_name = row
    return schemas.InvitationPreview(
        organization_name=org.name,
        organization_slug=org.slug,
        organization_avatar_url=org.avatar_url,
        email=invitation.email,
        role=invitation.role,
        inviter_display_name=inviter_name,
        expires_at=invitation.expires_at,
        status=invitation.effective_status(clock.now()),
    )


async def accept_invitation(
    session: AsyncSession, user: User, token: str
) -> tuple[Organization, Membership]:
    """Join the organization with the invited role; the signed-in user's verified email
    must be the invited address."""
    invitation = await session.scalar(
        select(Invitation)
        .where(Invitation.token_hash == tokens.hash_token(token))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if invitation is None:
        raise InvitationNotFound()
    return await _accept(session, user, invitation)


async def accept_invitation_by_id(
    session: AsyncSession, user: User, invitation_id: uuid.UUID
) -> tuple[Organization, Membership]:
    """`accept_invitation` for an invitation listed by `GET /me/invitations`: one sent to
    the user's own address (any other is not found)."""
    invitation = await session.scalar(
        select(Invitation)
        .where(Invitation.id == invitation_id, Invitation.email == normalize_email(user.email))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if invitation is None:
        raise InvitationNotFound()
    return await _accept(session, user, invitation)


def accepted(org: Organization, membership: Membership) -> schemas.InvitationAccepted:
    """The answer to an accepted invitation: the organization joined and the membership."""
    return schemas.InvitationAccepted(
        organization=schemas.MyOrganization(
            id=org.id,
            name=org.name,
            slug=org.slug,
            avatar_url=org.avatar_url,
            role=membership.role,
        ),
        member_id=membership.id,
    )


async def _accept(
    session: AsyncSession, user: User, invitation: Invitation
) -> tuple[Organization, Membership]:
    status = invitation.effective_status(clock.now())
    if status == InvitationStatus.revoked:
        raise InvitationRevoked()
    if status == InvitationStatus.accepted:
        raise InvitationAlreadyAccepted()
    if status == InvitationStatus.expired:
        raise InvitationExpired()
    if normalize_email(user.email) != invitation.email:
        raise InvitationEmailMismatch()
    if user.email_verified_at is None:
        raise EmailNotVerified("Verify your email address before accepting the invitation.")
    org = await session.get_one(Organization, invitation.organization_id)
    existing = await session.scalar(
        select(Membership.id).where(
            Membership.organization_id == org.id, Membership.user_id == user.id
        )
    )
    if existing is not None:
        raise AlreadyMember()
    membership = Membership(organization_id=org.id, user_id=user.id, role=invitation.role)
    await flush_or_conflict(session, {_MEMBERSHIP: AlreadyMember}, add=[membership])
    invitation.status = InvitationStatus.accepted
    invitation.accepted_at = clock.now()
    invitation.accepted_by_id = user.id
    await session.flush()
    # The new member is the actor of their own joining.
    await audit.record(
        session,
        OrgContext(org=org, user=user, membership=membership),
        "invitation.accepted",
        target=("invitation", invitation.id),
        data={
            "email": invitation.email,
            "role": invitation.role.value,
            "member_id": str(membership.id),
        },
    )
    return org, membership
