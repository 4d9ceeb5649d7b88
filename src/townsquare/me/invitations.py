"""`GET /me/invitations`: the pending invitations sent to the caller's verified address,
across organizations. Accepting one goes through the same flow as the emailed link
(`orgs.invitations`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from townsquare.auth.models import User
from townsquare.kit import clock
from townsquare.kit.pagination import PageParams, paginate
from townsquare.me.errors import InvitationsNeedVerifiedEmail
from townsquare.orgs.enums import InvitationStatus, MemberRole
from townsquare.orgs.models import Invitation, Membership, Organization


class InvitingOrganization(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    avatar_url: str | None


class MyInvitation(BaseModel):
    """Accept it with `POST /me/invitations/{id}/accept`."""

    id: uuid.UUID
    organization: InvitingOrganization
    role: MemberRole
    inviter_display_name: str | None
    created_at: datetime
    expires_at: datetime


async def list_my_invitations(
    session: AsyncSession, user: User, params: PageParams
) -> tuple[list[MyInvitation], int]:
    """Pending, unexpired invitations to the user's address from organizations they are
    not a member of, newest first; 403 `email_not_verified` before the address is proven
    (anyone can type an address at registration)."""
    if user.email_verified_at is None:
        raise InvitationsNeedVerifiedEmail()
    inviter = aliased(User)
    member_of = select(Membership.organization_id).where(Membership.user_id == user.id)
    rows, total = await paginate(
        session,
        select(Invitation, Organization, inviter.display_name)
        .join(Organization, Organization.id == Invitation.organization_id)
        .outerjoin(inviter, inviter.id == Invitation.invited_by_id)
        .where(
            Invitation.email == user.email,
            Invitation.status == InvitationStatus.pending,
            Invitation.expires_at > clock.now(),
            Invitation.organization_id.not_in(member_of),
        )
        .order_by(Invitation.created_at.desc(), Invitation.id.desc()),
        params,
    )
    return [
        MyInvitation(
            id=invitation.id,
            organization=InvitingOrganization(
                id=org.id, slug=org.slug, name=org.name, avatar_url=org.avatar_url
            ),
            role=invitation.role,
            inviter_display_name=inviter_name,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
        )
        for invitation, org, inviter_name in rows
    ], total
