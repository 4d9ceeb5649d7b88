"""Members of an organization: the list, role changes, removal, leaving, ownership transfer.

Member changes that could leave an organization without an owner first lock the
organization row (`FOR NO KEY UPDATE` on PostgreSQL; SQLite write transactions are already
serialized) and then re-read the memberships they judge, so two concurrent demotions or
departures cannot both pass the "at least one owner" check. The lock is taken before the
transaction inserts any row that references the organization, so it never waits behind
its own foreign-key locks.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.kit.pagination import PageParams, paginate
from townsquare.orgs import audit, departures, schemas
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import MemberRole, Permission
from townsquare.orgs.errors import (
    CannotChangeOwnRole,
    CannotGrantOwner,
    CannotManageHigherRole,
    LastOwner,
    MemberNotFound,
    OrganizationNotFound,
    PermissionDenied,
    RoleAboveOwn,
    TransferTargetNotAdmin,
)
from townsquare.orgs.models import Membership, Organization
from townsquare.orgs.permissions import role_has


def present(membership: Membership, user: User) -> schemas.Member:
    """The member as the API shows it."""
    return schemas.Member(
        id=membership.id,
        user_id=user.id,
        display_name=user.display_name,
        email=user.email,
        avatar_url=user.avatar_url,
        role=membership.role,
        joined_at=membership.created_at,
    )


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_members(
    session: AsyncSession,
    ctx: OrgContext,
    params: PageParams,
    *,
    role: MemberRole | None = None,
    q: str | None = None,
) -> tuple[list[schemas.Member], int]:
    """One page of members, oldest first; `role` filters, `q` searches name and email."""
    filters: list[Any] = [Membership.organization_id == ctx.org.id]
    if role is not None:
        filters.append(Membership.role == role)
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        filters.append(
            or_(
                func.lower(User.display_name).like(pattern, escape="\\"),
                func.lower(User.email).like(pattern, escape="\\"),
            )
        )
    rows, total = await paginate(
        session,
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(*filters)
        .order_by(Membership.created_at, Membership.id),
        params,
    )
    return [present(membership, user) for membership, user in rows], total


async def get_member(
    session: AsyncSession, ctx: OrgContext, member_id: uuid.UUID
) -> tuple[Membership, User]:
    """The membership `member_id` of this organization (another org's id: `member_not_found`)."""
    row = (
        await session.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.id == member_id, Membership.organization_id == ctx.org.id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        raise MemberNotFound()
    membership, user = row
    return membership, user


async def lock_organization(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """Serialize changes to the organization's members and modules until the commit."""
    locked = await session.scalar(
        select(Organization.id)
        .where(Organization.id == organization_id)
        .with_for_update(key_share=True)
    )
    if locked is None:
        raise OrganizationNotFound()


async def _locked_actor(
    session: AsyncSession, ctx: OrgContext, permission: Permission | None
) -> Membership:
    """Lock the organization, then re-read the caller's membership as it is now."""
    await lock_organization(session, ctx.org.id)
    actor = await session.scalar(
        select(Membership)
        .where(Membership.id == ctx.membership.id)
        .execution_options(populate_existing=True)
    )
    if actor is None:
        raise OrganizationNotFound()
    if permission is not None and not role_has(actor.role, permission):
        raise PermissionDenied()
    return actor


async def _ensure_not_last_owner(session: AsyncSession, membership: Membership) -> None:
    if membership.role != MemberRole.owner:
        return
    owners = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(
            Membership.organization_id == membership.organization_id,
            Membership.role == MemberRole.owner,
        )
    )
    if (owners or 0) <= 1:
        raise LastOwner()


async def change_member_role(
    session: AsyncSession, ctx: OrgContext, member_id: uuid.UUID, role: MemberRole
) -> schemas.Member:
    """Change another member's role: never one's own, never to owner, never above one's own
    role, never on a member ranked above oneself, and never the last owner away."""
    actor = await _locked_actor(session, ctx, Permission.members_manage)
    target, user = await get_member(session, ctx, member_id)
    if target.id == actor.id:
        raise CannotChangeOwnRole()
    if role == MemberRole.owner:
        raise CannotGrantOwner()
    if role.rank > actor.role.rank:
        raise RoleAboveOwn()
    if target.role.rank > actor.role.rank:
        raise CannotManageHigherRole()
    if target.role == role:
        return present(target, user)
    await _ensure_not_last_owner(session, target)
    previous = target.role
    target.role = role
    await session.flush()
    await departures.membership_changed(session, ctx, user.id, role)
    await audit.record(
        session,
        ctx,
        "member.role_changed",
        target=("member", target.id),
        data={"user_id": str(user.id), "from": previous.value, "to": role.value},
    )
    return present(target, user)


async def remove_member(session: AsyncSession, ctx: OrgContext, member_id: uuid.UUID) -> None:
    """Remove a member ranked no higher than the caller; removing oneself is leaving."""
    actor = await _locked_actor(session, ctx, Permission.members_manage)
    target, user = await get_member(session, ctx, member_id)
    if target.id == actor.id:
        await _leave(session, ctx, actor)
        return
    if target.role.rank > actor.role.rank:
        raise CannotManageHigherRole()
    await _ensure_not_last_owner(session, target)
    await session.delete(target)
    await session.flush()
    await departures.membership_changed(session, ctx, user.id, None)
    await audit.record(
        session,
        ctx,
        "member.removed",
        target=("member", target.id),
        data={"user_id": str(user.id), "role": target.role.value},
    )


async def leave_organization(session: AsyncSession, ctx: OrgContext) -> None:
    """The caller leaves; the last owner must transfer ownership first."""
    actor = await _locked_actor(session, ctx, None)
    await _leave(session, ctx, actor)


async def _leave(session: AsyncSession, ctx: OrgContext, actor: Membership) -> None:
    await _ensure_not_last_owner(session, actor)
    await session.delete(actor)
    await session.flush()
    await departures.membership_changed(session, ctx, ctx.user.id, None)
    await audit.record(
        session,
        ctx,
        "member.left",
        target=("member", actor.id),
        data={"user_id": str(ctx.user.id), "role": actor.role.value},
    )


async def transfer_ownership(
    session: AsyncSession, ctx: OrgContext, member_id: uuid.UUID
) -> schemas.OwnershipTransferred:
    """Make the admin `member_id` an owner and the caller an admin, in one transaction."""
    actor = await _locked_actor(session, ctx, Permission.ownership_transfer)
    target, user = await get_member(session, ctx, member_id)
    if target.id == actor.id or target.role != MemberRole.admin:
        raise TransferTargetNotAdmin()
    target.role = MemberRole.owner
    actor.role = MemberRole.admin
    await session.flush()
    await audit.record(
        session,
        ctx,
        "organization.ownership_transferred",
        target=("member", target.id),
        data={"from_user_id": str(ctx.user.id), "to_user_id": str(user.id)},
    )
    return schemas.OwnershipTransferred(
        new_owner=present(target, user), previous_owner=present(actor, ctx.user)
    )
