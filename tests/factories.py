"""Plain async factory functions that arrange rows for tests. They flush, never commit."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.orgs.enums import MemberRole, Module
from townsquare.orgs.models import Membership, Organization, OrganizationModule


async def create_organization(
    session: AsyncSession,
    *,
    owner: object | None = None,
    name: str | None = None,
    slug: str | None = None,
    timezone: str = "UTC",
    modules: tuple[Module, ...] = (Module.cms, Module.events, Module.support),
) -> Organization:
    """An organization with the given modules on; `owner` (a User) becomes its owner."""
    suffix = uuid.uuid4().hex[:8]
    org = Organization(
        name=name or f"Org {suffix}",
        slug=slug or f"org-{suffix}",
        timezone=timezone,
        modules=[OrganizationModule(module=m) for m in modules],
    )
    session.add(org)
    await session.flush()
    if owner is not None:
        await add_member(session, org, owner, MemberRole.owner)
    return org


async def add_member(
    session: AsyncSession, org: Organization, user: object, role: MemberRole
) -> Membership:
    membership = Membership(organization_id=org.id, user_id=user.id, role=role)  # type: ignore[attr-defined]
    session.add(membership)
    await session.flush()
    return membership
