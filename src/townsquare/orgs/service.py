"""Organizations: business rules and all their SQL.

Member changes that could leave an organization without an owner (role changes, removals,
leaving, ownership transfer) first lock the organization row (`FOR NO KEY UPDATE` on
PostgreSQL; SQLite write transactions are already serialized) and then re-read the
memberships they judge, so two concurrent demotions or departures cannot both pass the
"at least one owner" check. The lock is taken before the transaction inserts any row that
references the organization, so it never waits behind its own foreign-key locks.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db import is_unique_violation
from townsquare.email import service as email_service
from townsquare.errors import Conflict, Forbidden, Gone, NotFound, field_error
from townsquare.kit import clock, tokens
from townsquare.kit.pagination import PageParams
from townsquare.kit.slugs import slugify, with_suffix
from townsquare.orgs.deps import OrganizationNotFound, OrgContext, PermissionDenied
from townsquare.orgs.enums import InvitationStatus, MemberRole, Module, Permission
from townsquare.orgs.models import (
    SLUG_MAX,
    AuditLogEntry,
    Invitation,
    Membership,
    Organization,
    OrganizationModule,
)
from townsquare.orgs.permissions import role_has
from townsquare.orgs.schemas import (
    AuditActor,
    AuditLogEntryRead,
    InvitationPreview,
    MemberRead,
    MyOrganization,
    OrganizationRead,
)

logger = logging.getLogger("townsquare.orgs")

INVITATION_EMAIL_TEMPLATE = "invitation"
_SLUG_ATTEMPTS = 5
_SUGGESTION_BATCH = 20


# --- errors -----------------------------------------------------------------------------


class SlugTaken(Conflict):
    code = "slug_taken"
    title = "Slug taken"
    detail = "Another organization already uses this slug; `suggestion` is a free one."


class MemberNotFound(NotFound):
    code = "member_not_found"
    detail = "No such member in this organization."


class CannotChangeOwnRole(Forbidden):
    code = "cannot_change_own_role"
    detail = "Nobody changes their own role; ask another admin or owner."


class CannotGrantOwner(Forbidden):
    code = "cannot_grant_owner"
    detail = "Nobody is made owner by a role change or an invitation; transfer ownership instead."


class RoleAboveOwn(Forbidden):
    code = "role_above_own"
    detail = "You cannot grant a role above your own."


class CannotManageHigherRole(Forbidden):
    code = "cannot_manage_higher_role"
    detail = "You cannot change or remove a member whose role is above your own."


class LastOwner(Conflict):
    code = "last_owner"
    title = "Last owner"
    detail = "An organization must keep at least one owner; transfer ownership first."


class TransferTargetNotAdmin(Conflict):
    code = "transfer_target_not_admin"
    detail = "Ownership can only be transferred to another member who is an admin."


class InvitationNotFound(NotFound):
    code = "invitation_not_found"
    detail = "No such invitation."


class InvitationExpired(Gone):
    code = "invitation_expired"
    title = "Invitation expired"
    detail = "This invitation has expired; ask for a new one."


class InvitationRevoked(Gone):
    code = "invitation_revoked"
    title = "Invitation revoked"
    detail = "This invitation was revoked."


class InvitationAlreadyAccepted(Conflict):
    code = "invitation_already_accepted"
    detail = "This invitation has already been accepted."


class InvitationEmailMismatch(Forbidden):
    code = "invitation_email_mismatch"
    detail = "This invitation was sent to another email address; sign in with that account."


class EmailNotVerified(Forbidden):
    code = "email_not_verified"
    detail = "Verify your email address before accepting the invitation."


class AlreadyMember(Conflict):
    code = "already_member"
    detail = "This person is already a member of the organization."


class InvitationExists(Conflict):
    code = "invitation_exists"
    detail = (
        "A pending invitation for this address already exists; resend or revoke it "
        "(`invitation_id`)."
    )


# --- audit ------------------------------------------------------------------------------


async def record_audit(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    action: str,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """Append an audit entry in the caller's transaction (`action` like `article.published`)."""
    entry = AuditLogEntry(
        organization_id=organization_id,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        data=data or {},
    )
    session.add(entry)
    await session.flush()
    return entry


async def list_audit_log(
    session: AsyncSession,
    organization_id: uuid.UUID,
    params: PageParams,
    *,
    action: str | None = None,
) -> tuple[list[AuditLogEntryRead], int]:
    """The organization's audit entries, newest first, with the actor's display name."""
    filters = [AuditLogEntry.organization_id == organization_id]
    if action:
        filters.append(AuditLogEntry.action == action)
    total = await _count(session, select(AuditLogEntry.id).where(*filters))
    rows = await session.execute(
        select(AuditLogEntry, User.display_name)
        .outerjoin(User, User.id == AuditLogEntry.actor_id)
        .where(*filters)
        .order_by(AuditLogEntry.created_at.desc(), AuditLogEntry.id.desc())
        .offset(params.offset)
        .limit(params.per_page)
    )
    items = [
        AuditLogEntryRead(
            id=entry.id,
            action=entry.action,
            actor=(
                AuditActor(id=entry.actor_id, display_name=display_name or "")
                if entry.actor_id is not None
                else None
            ),
            target_type=entry.target_type,
            target_id=entry.target_id,
            data=entry.data,
            created_at=entry.created_at,
        )
        for entry, display_name in rows
    ]
    return items, total


# --- organizations ----------------------------------------------------------------------


async def suggest_slug(session: AsyncSession, base: str) -> str:
    """`base` if no organization uses it, else the first free `base-2`, `base-3`, ..."""
    if not await _slug_taken(session, base):
        return base
    start = 2
    while True:
        candidates = [
            with_suffix(base, n, SLUG_MAX) for n in range(start, start + _SUGGESTION_BATCH)
        ]
        taken = set(
            (
                await session.scalars(
                    select(Organization.slug).where(Organization.slug.in_(candidates))
                )
            ).all()
        )
        for candidate in candidates:
            if candidate not in taken:
                return candidate
        start += _SUGGESTION_BATCH


async def _slug_taken(
    session: AsyncSession, slug: str, *, other_than: uuid.UUID | None = None
) -> bool:
    stmt = select(Organization.id).where(Organization.slug == slug)
    if other_than is not None:
        stmt = stmt.where(Organization.id != other_than)
    return await session.scalar(stmt.limit(1)) is not None


async def _slug_taken_error(session: AsyncSession, slug: str) -> SlugTaken:
    return SlugTaken(extra={"suggestion": await suggest_slug(session, slug)})


def _default_modules(settings: Settings) -> list[Module]:
    modules: list[Module] = []
    for name in settings.DEFAULT_MODULES:
        try:
            module = Module(name)
        except ValueError:
            logger.warning("unknown module %r in DEFAULT_MODULES ignored", name)
            continue
        if module not in modules:
            modules.append(module)
    return modules


async def create_organization(
    session: AsyncSession,
    creator: User,
    *,
    name: str,
    slug: str | None,
    avatar_url: str | None,
    timezone: str | None,
    settings: Settings,
) -> Organization:
    """A new organization owned by `creator`, with the default modules and time zone.

    An explicit slug that is taken answers 409 `slug_taken` with a free `suggestion`; a slug
    made from the name takes the first free `-2`, `-3`... suffix instead. Both hold when
    requests race: the unique violation is caught in a savepoint.
    """
    base = slug if slug is not None else slugify(name, max_length=SLUG_MAX)
    if slug is not None and await _slug_taken(session, slug):
        raise await _slug_taken_error(session, slug)
    candidate = base if slug is not None else await suggest_slug(session, base)
    org: Organization | None = None
    for _ in range(_SLUG_ATTEMPTS):
        attempt = Organization(
            name=name,
            slug=candidate,
            avatar_url=avatar_url,
            timezone=timezone or settings.DEFAULT_TIMEZONE,
        )
        try:
            async with session.begin_nested():
                session.add(attempt)
                await session.flush()
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            if slug is not None:
                raise await _slug_taken_error(session, candidate) from exc
            candidate = await suggest_slug(session, base)
            continue
        org = attempt
        break
    if org is None:
        raise await _slug_taken_error(session, base)
    for module in _default_modules(settings):
        session.add(OrganizationModule(organization_id=org.id, module=module))
    session.add(Membership(organization_id=org.id, user_id=creator.id, role=MemberRole.owner))
    await session.flush()
    await record_audit(
        session,
        organization_id=org.id,
        actor_id=creator.id,
        action="organization.created",
        target_type="organization",
        target_id=org.id,
        data={"name": org.name, "slug": org.slug},
    )
    return org


async def get_modules(session: AsyncSession, organization_id: uuid.UUID) -> list[Module]:
    """The modules switched on for the organization, in a stable order."""
    enabled = set(
        (
            await session.scalars(
                select(OrganizationModule.module).where(
                    OrganizationModule.organization_id == organization_id
                )
            )
        ).all()
    )
    return [module for module in Module if module in enabled]


async def organization_read(
    session: AsyncSession, org: Organization, role: MemberRole
) -> OrganizationRead:
    """The organization as its members see it, with its modules and the caller's role."""
    return OrganizationRead(
        id=org.id,
        name=org.name,
        slug=org.slug,
        avatar_url=org.avatar_url,
        timezone=org.timezone,
        modules=await get_modules(session, org.id),
        role=role,
        created_at=org.created_at,
        updated_at=org.updated_at,
    )


_UPDATABLE = ("name", "slug", "avatar_url", "timezone")
_REQUIRED = frozenset({"name", "slug", "timezone"})


async def update_organization(
    session: AsyncSession, ctx: OrgContext, changes: dict[str, Any]
) -> Organization:
    """Apply the fields the caller sent (`avatar_url: None` clears it) and audit what changed."""
    org = ctx.org
    for field, value in changes.items():
        if field not in _UPDATABLE:
            raise field_error(field, "cannot be changed", "not_updatable")
        if value is None and field in _REQUIRED:
            raise field_error(field, "cannot be null", "null")
    diff = {
        field: {"from": getattr(org, field), "to": value}
        for field, value in changes.items()
        if getattr(org, field) != value
    }
    if not diff:
        return org
    new_slug = changes.get("slug")
    if (
        "slug" in diff
        and new_slug is not None
        and await _slug_taken(session, new_slug, other_than=org.id)
    ):
        raise await _slug_taken_error(session, new_slug)
    try:
        # Assign inside the savepoint: begin_nested() flushes pending changes before it starts.
        async with session.begin_nested():
            for field in diff:
                setattr(org, field, changes[field])
            await session.flush()
    except IntegrityError as exc:
        if is_unique_violation(exc) and new_slug is not None:
            raise await _slug_taken_error(session, new_slug) from exc
        raise
    await record_audit(
        session,
        organization_id=org.id,
        actor_id=ctx.user.id,
        action="organization.updated",
        target_type="organization",
        target_id=org.id,
        data={"changes": diff},
    )
    return org


async def delete_organization(session: AsyncSession, ctx: OrgContext) -> None:
    """Delete the organization; every tenant row goes with it (ON DELETE CASCADE)."""
    org_id = ctx.org.id
    await session.execute(
        delete(Organization)
        .where(Organization.id == org_id)
        .execution_options(synchronize_session=False)
    )
    logger.info(
        "organization deleted",
        extra={"organization_id": str(org_id), "slug": ctx.org.slug, "actor_id": str(ctx.user.id)},
    )


async def list_memberships_for_user(
    session: AsyncSession, user_id: uuid.UUID
) -> list[MyOrganization]:
    """Every organization the user belongs to, with their role (for `GET /auth/me`)."""
    rows = await session.execute(_my_organizations(user_id))
    return [_my_organization(org, role) for org, role in rows]


async def list_my_organizations(
    session: AsyncSession, user_id: uuid.UUID, params: PageParams
) -> tuple[list[MyOrganization], int]:
    """One page of the user's organizations, by name."""
    total = await _count(session, select(Membership.id).where(Membership.user_id == user_id))
    rows = await session.execute(
        _my_organizations(user_id).offset(params.offset).limit(params.per_page)
    )
    return [_my_organization(org, role) for org, role in rows], total


def _my_organizations(user_id: uuid.UUID) -> Select[Organization, MemberRole]:
    return (
        select(Organization, Membership.role)
        .join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user_id)
        .order_by(Organization.name, Organization.id)
    )


def _my_organization(org: Organization, role: MemberRole) -> MyOrganization:
    return MyOrganization(
        id=org.id, name=org.name, slug=org.slug, avatar_url=org.avatar_url, role=role
    )


# --- members ----------------------------------------------------------------------------


def member_read(membership: Membership, user: User) -> MemberRead:
    return MemberRead(
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
    organization_id: uuid.UUID,
    params: PageParams,
    *,
    role: MemberRole | None = None,
    q: str | None = None,
) -> tuple[list[MemberRead], int]:
    """One page of members, oldest first; `role` filters, `q` searches name and email."""
    filters: list[Any] = [Membership.organization_id == organization_id]
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
    base = select(Membership.id).join(User, User.id == Membership.user_id).where(*filters)
    total = await _count(session, base)
    rows = await session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(*filters)
        .order_by(Membership.created_at, Membership.id)
        .offset(params.offset)
        .limit(params.per_page)
    )
    return [member_read(m, u) for m, u in rows], total


async def get_member(
    session: AsyncSession, organization_id: uuid.UUID, member_id: uuid.UUID
) -> tuple[Membership, User]:
    """The membership `member_id` of this organization (another org's id: `member_not_found`)."""
    row = (
        await session.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.id == member_id, Membership.organization_id == organization_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        raise MemberNotFound()
    membership, user = row
    return membership, user


async def _lock_organization(session: AsyncSession, organization_id: uuid.UUID) -> None:
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
    await _lock_organization(session, ctx.org.id)
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


async def _owner_count(session: AsyncSession, organization_id: uuid.UUID) -> int:
    return await _count(
        session,
        select(Membership.id).where(
            Membership.organization_id == organization_id, Membership.role == MemberRole.owner
        ),
    )


async def _ensure_not_last_owner(session: AsyncSession, membership: Membership) -> None:
    if (
        membership.role == MemberRole.owner
        and await _owner_count(session, membership.organization_id) <= 1
    ):
        raise LastOwner()


async def change_member_role(
    session: AsyncSession, ctx: OrgContext, member_id: uuid.UUID, role: MemberRole
) -> MemberRead:
    """Change another member's role: never one's own, never to owner, never above one's own
    role, never on a member ranked above oneself, and never the last owner away."""
    actor = await _locked_actor(session, ctx, Permission.members_manage)
    target, user = await get_member(session, ctx.org.id, member_id)
    if target.id == actor.id:
        raise CannotChangeOwnRole()
    if role == MemberRole.owner:
        raise CannotGrantOwner()
    if role.rank > actor.role.rank:
        raise RoleAboveOwn()
    if target.role.rank > actor.role.rank:
        raise CannotManageHigherRole()
    if target.role == role:
        return member_read(target, user)
    await _ensure_not_last_owner(session, target)
    previous = target.role
    target.role = role
    await session.flush()
    await record_audit(
        session,
        organization_id=ctx.org.id,
        actor_id=ctx.user.id,
        action="member.role_changed",
        target_type="member",
        target_id=target.id,
        data={"user_id": str(user.id), "from": previous.value, "to": role.value},
    )
    return member_read(target, user)


async def remove_member(session: AsyncSession, ctx: OrgContext, member_id: uuid.UUID) -> None:
    """Remove a member ranked no higher than the caller; removing oneself is leaving."""
    actor = await _locked_actor(session, ctx, Permission.members_manage)
    target, user = await get_member(session, ctx.org.id, member_id)
    if target.id == actor.id:
        await _leave(session, ctx, actor)
        return
    if target.role.rank > actor.role.rank:
        raise CannotManageHigherRole()
    await _ensure_not_last_owner(session, target)
    await session.delete(target)
    await session.flush()
    await record_audit(
        session,
        organization_id=ctx.org.id,
        actor_id=ctx.user.id,
        action="member.removed",
        target_type="member",
        target_id=target.id,
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
    await record_audit(
        session,
        organization_id=ctx.org.id,
        actor_id=ctx.user.id,
        action="member.left",
        target_type="member",
        target_id=actor.id,
        data={"user_id": str(ctx.user.id), "role": actor.role.value},
    )


@dataclass(frozen=True)
class Transfer:
    new_owner: MemberRead
    previous_owner: MemberRead


async def transfer_ownership(
    session: AsyncSession, ctx: OrgContext, member_id: uuid.UUID
) -> Transfer:
    """Make the admin `member_id` an owner and the caller an admin, in one transaction."""
    actor = await _locked_actor(session, ctx, Permission.ownership_transfer)
    target, user = await get_member(session, ctx.org.id, member_id)
    if target.id == actor.id or target.role != MemberRole.admin:
        raise TransferTargetNotAdmin()
    target.role = MemberRole.owner
    actor.role = MemberRole.admin
    await session.flush()
    await record_audit(
        session,
        organization_id=ctx.org.id,
        actor_id=ctx.user.id,
        action="organization.ownership_transferred",
        target_type="member",
        target_id=target.id,
        data={"from_user_id": str(ctx.user.id), "to_user_id": str(user.id)},
    )
    return Transfer(
        new_owner=member_read(target, user), previous_owner=member_read(actor, ctx.user)
    )


# --- invitations ------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """Invitations match accounts by address, ignoring case."""
    return email.strip().lower()


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
    try:
        async with session.begin_nested():
            session.add(invitation)
            await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise InvitationExists() from exc
    await _send_invitation_email(session, ctx, invitation, token, settings)
    await record_audit(
        session,
        organization_id=ctx.org.id,
        actor_id=ctx.user.id,
        action="invitation.created",
        target_type="invitation",
        target_id=invitation.id,
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
    organization_id: uuid.UUID,
    params: PageParams,
    *,
    status: InvitationStatus | None = None,
) -> tuple[list[Invitation], int]:
    """One page of the organization's invitations, newest first, optionally by status."""
    filters: list[Any] = [Invitation.organization_id == organization_id]
    if status is not None:
        filters.extend(invitation_status_filter(status, clock.now()))
    total = await _count(session, select(Invitation.id).where(*filters))
    items = (
        await session.scalars(
            select(Invitation)
            .where(*filters)
            .order_by(Invitation.created_at.desc(), Invitation.id.desc())
            .offset(params.offset)
            .limit(params.per_page)
        )
    ).all()
    return list(items), total


async def _get_invitation_for_update(
    session: AsyncSession, organization_id: uuid.UUID, invitation_id: uuid.UUID
) -> Invitation:
    invitation = await session.scalar(
        select(Invitation)
        .where(Invitation.id == invitation_id, Invitation.organization_id == organization_id)
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
    invitation = await _get_invitation_for_update(session, ctx.org.id, invitation_id)
    if invitation.status == InvitationStatus.accepted:
        raise InvitationAlreadyAccepted()
    if invitation.status == InvitationStatus.revoked:
        raise InvitationRevoked()
    if invitation.role.rank > ctx.role.rank:
        raise CannotManageHigherRole()
    if await _is_member_by_email(session, ctx.org.id, invitation.email):
        raise AlreadyMember()
    token = tokens.new_token()
    try:
        async with session.begin_nested():
            invitation.token_hash = tokens.hash_token(token)
            invitation.expires_at = clock.now() + timedelta(seconds=settings.INVITATION_TTL_SECONDS)
            invitation.status = InvitationStatus.pending
            await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise InvitationExists() from exc
    await _send_invitation_email(session, ctx, invitation, token, settings)
    await record_audit(
        session,
        organization_id=ctx.org.id,
        actor_id=ctx.user.id,
        action="invitation.resent",
        target_type="invitation",
        target_id=invitation.id,
        data={"email": invitation.email, "role": invitation.role.value},
    )
    return invitation, token


async def revoke_invitation(
    session: AsyncSession, ctx: OrgContext, invitation_id: uuid.UUID
) -> None:
    """Revoke an invitation that was not accepted; revoking twice changes nothing."""
    invitation = await _get_invitation_for_update(session, ctx.org.id, invitation_id)
    if invitation.status == InvitationStatus.accepted:
        raise InvitationAlreadyAccepted()
    if invitation.status == InvitationStatus.revoked:
        return
    if invitation.role.rank > ctx.role.rank:
        raise CannotManageHigherRole()
    invitation.status = InvitationStatus.revoked
    invitation.revoked_at = clock.now()
    await session.flush()
    await record_audit(
        session,
        organization_id=ctx.org.id,
        actor_id=ctx.user.id,
        action="invitation.revoked",
        target_type="invitation",
        target_id=invitation.id,
        data={"email": invitation.email, "role": invitation.role.value},
    )


async def preview_invitation(session: AsyncSession, token: str) -> InvitationPreview:
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
    return InvitationPreview(
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
        raise EmailNotVerified()
    org = await session.get_one(Organization, invitation.organization_id)
    existing = await session.scalar(
        select(Membership.id).where(
            Membership.organization_id == org.id, Membership.user_id == user.id
        )
    )
    if existing is not None:
        raise AlreadyMember()
    membership = Membership(organization_id=org.id, user_id=user.id, role=invitation.role)
    try:
        async with session.begin_nested():
            session.add(membership)
            await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise AlreadyMember() from exc
    invitation.status = InvitationStatus.accepted
    invitation.accepted_at = clock.now()
    invitation.accepted_by_id = user.id
    await session.flush()
    await record_audit(
        session,
        organization_id=org.id,
        actor_id=user.id,
        action="invitation.accepted",
        target_type="invitation",
        target_id=invitation.id,
        data={
            "email": invitation.email,
            "role": invitation.role.value,
            "member_id": str(membership.id),
        },
    )
    return org, membership


# --- modules ----------------------------------------------------------------------------


async def set_modules(
    session: AsyncSession, ctx: OrgContext, modules: Sequence[Module]
) -> list[Module]:
    """Switch exactly `modules` on (the others off) and audit what changed."""
    await _lock_organization(session, ctx.org.id)
    wanted = set(modules)
    current = set(await get_modules(session, ctx.org.id))
    enabled = [m for m in Module if m in wanted - current]
    disabled = [m for m in Module if m in current - wanted]
    if disabled:
        await session.execute(
            delete(OrganizationModule).where(
                OrganizationModule.organization_id == ctx.org.id,
                OrganizationModule.module.in_(disabled),
            )
        )
    for module in enabled:
        session.add(OrganizationModule(organization_id=ctx.org.id, module=module))
    if enabled or disabled:
        await session.flush()
        await record_audit(
            session,
            organization_id=ctx.org.id,
            actor_id=ctx.user.id,
            action="modules.updated",
            target_type="organization",
            target_id=ctx.org.id,
            data={"enabled": [m.value for m in enabled], "disabled": [m.value for m in disabled]},
        )
    return [m for m in Module if m in wanted]


# --- helpers ----------------------------------------------------------------------------


async def _count(session: AsyncSession, stmt: Select[Any]) -> int:
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return int(total or 0)
