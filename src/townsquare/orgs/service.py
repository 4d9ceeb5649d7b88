"""Organizations and their modules, and the organizations a person belongs to.

Members live in `members.py`, invitations in `invitations.py`, the audit log in `audit.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth import service as auth_service
from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db_slugs import SlugScope
from townsquare.errors import field_error
from townsquare.kit.pagination import PageParams, paginate
from townsquare.media import service as media_service
from townsquare.orgs import audit, schemas
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import MemberRole, Module
from townsquare.orgs.errors import SlugTaken
from townsquare.orgs.members import lock_organization
from townsquare.orgs.models import SLUG_MAX, Membership, Organization, OrganizationModule
from townsquare.support import attachments as support_attachments

logger = logging.getLogger("townsquare.orgs")

organization_slugs = SlugScope(
    column=Organization.slug,
    constraint="uq_organizations_slug",
    max_length=SLUG_MAX,
    taken=lambda suggestion: SlugTaken(extra={"suggestion": suggestion}),
)
"""Slugs are unique across all organizations (they name the organization in every path)."""


# --- organizations ----------------------------------------------------------------------


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
    made from the name takes the first free `-2`, `-3`... suffix instead, also when
    requests race.
    """
    auth_service.require_verified_email(creator)
    org = await organization_slugs.insert(
        session,
        lambda free: Organization(
            name=name,
            slug=free,
            avatar_url=avatar_url,
            timezone=timezone or settings.DEFAULT_TIMEZONE,
        ),
        explicit=slug,
        source_text=name,
    )
    for module in _default_modules(settings):
        session.add(OrganizationModule(organization_id=org.id, module=module))
    owner = Membership(organization_id=org.id, user_id=creator.id, role=MemberRole.owner)
    session.add(owner)
    await session.flush()
    await audit.record(
        session,
        OrgContext(org=org, user=creator, membership=owner),
        "organization.created",
        target=("organization", org.id),
        data={"name": org.name, "slug": org.slug},
    )
    return org


async def present(
    session: AsyncSession, org: Organization, role: MemberRole
) -> schemas.Organization:
    """The organization as its members see it, with its modules and the caller's `role`."""
    return schemas.Organization(
        id=org.id,
        name=org.name,
        slug=org.slug,
        avatar_url=org.avatar_url,
        timezone=org.timezone,
        modules=await _enabled_modules(session, org),
        role=role,
        created_at=org.created_at,
        updated_at=org.updated_at,
    )


_UPDATABLE = ("name", "slug", "avatar_url", "timezone")


async def update_organization(
    session: AsyncSession, ctx: OrgContext, changes: dict[str, Any]
) -> Organization:
    """Apply the fields the caller sent (`avatar_url: None` clears it) and audit what changed.

    A slug another organization uses answers 409 `slug_taken` with a free `suggestion`."""
    org = ctx.org
    for field in changes:
        if field not in _UPDATABLE:
            raise field_error(field, "cannot be changed", "not_updatable")
    diff = {
        field: {"from": getattr(org, field), "to": value}
        for field, value in changes.items()
        if getattr(org, field) != value
    }
    if not diff:
        return org
    for field in diff.keys() - {"slug"}:
        setattr(org, field, changes[field])
    if "slug" in diff:
        await organization_slugs.change(session, org, changes["slug"])
    await audit.record(
        session,
        ctx,
        "organization.updated",
        target=("organization", org.id),
        data={"changes": diff},
    )
    return org


async def delete_organization(session: AsyncSession, ctx: OrgContext) -> None:
    """Delete the organization; every tenant row goes with it (ON DELETE CASCADE)."""
    org_id = ctx.org.id
    # Its media rows and chat messages go by cascade; their stored objects are queued for
    # removal first.
    await media_service.forget_organization(session, org_id)
    await support_attachments.forget_organization(session, org_id)
    await session.execute(
        delete(Organization)
        .where(Organization.id == org_id)
        .execution_options(synchronize_session=False)
    )
    logger.info(
        "organization deleted",
        extra={"organization_id": str(org_id), "slug": ctx.org.slug, "actor_id": str(ctx.user.id)},
    )


# --- the organizations of a person ------------------------------------------------------


async def list_memberships_for_user(
    session: AsyncSession, user: User
) -> list[schemas.MyOrganization]:
    """Every organization `user` belongs to, by name, with their role (for `GET /auth/me`)."""
    rows = await session.execute(_my_organizations(user))
    return [_my_organization(org, role) for org, role in rows]


async def list_my_organizations(
    session: AsyncSession, user: User, params: PageParams
) -> tuple[list[schemas.MyOrganization], int]:
    """One page of `user`'s organizations, by name."""
    rows, total = await paginate(session, _my_organizations(user), params)
    return [_my_organization(org, role) for org, role in rows], total


def _my_organizations(user: User) -> Select[Organization, MemberRole]:
    return (
        select(Organization, Membership.role)
        .join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user.id)
        .order_by(Organization.name, Organization.id)
    )


def _my_organization(org: Organization, role: MemberRole) -> schemas.MyOrganization:
    return schemas.MyOrganization(
        id=org.id, name=org.name, slug=org.slug, avatar_url=org.avatar_url, role=role
    )


# --- modules ----------------------------------------------------------------------------


async def _enabled_modules(session: AsyncSession, org: Organization) -> list[Module]:
    enabled = set(
        await session.scalars(
            select(OrganizationModule.module).where(OrganizationModule.organization_id == org.id)
        )
    )
    return [module for module in Module if module in enabled]


async def get_modules(session: AsyncSession, ctx: OrgContext) -> list[Module]:
    """The modules switched on for the organization, in a stable order."""
    return await _enabled_modules(session, ctx.org)


async def set_modules(
    session: AsyncSession, ctx: OrgContext, modules: Sequence[Module]
) -> list[Module]:
    """Switch exactly `modules` on (the others off) and audit what changed."""
    await lock_organization(session, ctx.org.id)
    wanted = set(modules)
    current = set(await get_modules(session, ctx))
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
        await audit.record(
            session,
            ctx,
            "modules.updated",
            target=("organization", ctx.org.id),
            data={"enabled": [m.value for m in enabled], "disabled": [m.value for m in disabled]},
        )
    return [m for m in Module if m in wanted]
