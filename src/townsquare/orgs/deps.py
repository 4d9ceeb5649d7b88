"""The org guard: the one way to protect an org-scoped route, and its named aliases."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Path
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.deps import CurrentUser
from townsquare.db import DbSession
from townsquare.kit.slugs import is_valid_slug
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import Module, Permission
from townsquare.orgs.errors import ModuleDisabled, OrganizationNotFound, PermissionDenied
from townsquare.orgs.models import Membership, Organization, OrganizationModule
from townsquare.orgs.permissions import role_has


class OrgGuard:
    """Dependency: 404 unless the caller is a member, 403 without `permission` or `module`."""

    def __init__(self, permission: Permission, *, module: Module | None = None) -> None:
        self.permission = permission
        self.module = module

    async def __call__(
        self,
        session: DbSession,
        user: CurrentUser,
        org: Annotated[str, Path(description="The organization's slug.", max_length=64)],
    ) -> OrgContext:
        if not is_valid_slug(org):
            # No organization has such a slug; and PostgreSQL refuses some characters
            # (NUL) in a query parameter outright, which must not become a 500.
            raise OrganizationNotFound()
        row = (
            await session.execute(
                select(Organization, Membership)
                .join(Membership, Membership.organization_id == Organization.id)
                .where(Organization.slug == org, Membership.user_id == user.id)
            )
        ).first()
        if row is None:
            raise OrganizationNotFound()
        organization, membership = row
        if self.module is not None and not await module_enabled(
            session, organization.id, self.module
        ):
            raise ModuleDisabled()
        if not role_has(membership.role, self.permission):
            raise PermissionDenied()
        return OrgContext(org=organization, user=user, membership=membership)


def org_guard(permission: Permission, *, module: Module | None = None) -> Any:
    """`Depends(OrgGuard(...))` for a domain's named alias: `Annotated[OrgContext,
    org_guard(...)]`."""
    return Depends(OrgGuard(permission, module=module))


async def module_enabled(session: AsyncSession, organization_id: uuid.UUID, module: Module) -> bool:
    """Whether `module` is switched on for the organization."""
    found = await session.scalar(
        select(OrganizationModule.module).where(
            OrganizationModule.organization_id == organization_id,
            OrganizationModule.module == module,
        )
    )
    return found is not None


# One alias per permission the organizations routes need (who holds it: permissions.py).

OrgReader = Annotated[OrgContext, org_guard(Permission.org_read)]
"""Any member: the organization itself, leaving it."""

MembersReader = Annotated[OrgContext, org_guard(Permission.members_read)]
"""Any member: the member list."""

OrgAdmin = Annotated[OrgContext, org_guard(Permission.org_update)]
"""Owners and admins: name, slug, avatar and time zone."""

OrgOwner = Annotated[OrgContext, org_guard(Permission.org_delete)]
"""Owners: deleting the organization."""

OwnershipTransferrer = Annotated[OrgContext, org_guard(Permission.ownership_transfer)]
"""Owners: handing ownership to an admin."""

MembersManager = Annotated[OrgContext, org_guard(Permission.members_manage)]
"""Owners and admins: roles, removals, invitations."""

ModulesManager = Annotated[OrgContext, org_guard(Permission.modules_manage)]
"""Owners and admins: which modules are on."""

AuditReader = Annotated[OrgContext, org_guard(Permission.audit_read)]
"""Owners and admins: the audit log."""
