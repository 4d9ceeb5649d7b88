"""The org guard: the one way to protect an org-scoped route."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.deps import CurrentUser
from townsquare.auth.models import User
from townsquare.db import DbSession
from townsquare.errors import Forbidden, NotFound
from townsquare.kit.slugs import is_valid_slug
from townsquare.orgs.enums import MemberRole, Module, Permission
from townsquare.orgs.models import Membership, Organization, OrganizationModule
from townsquare.orgs.permissions import role_has


class OrganizationNotFound(NotFound):
    code = "organization_not_found"
    detail = "No such organization."


class PermissionDenied(Forbidden):
    code = "permission_denied"
    detail = "Your role in this organization does not allow this."


class ModuleDisabled(Forbidden):
    code = "module_disabled"
    title = "Module disabled"
    detail = "This module is turned off for the organization."


@dataclass(frozen=True)
class OrgContext:
    """The organization named in the path, the caller, and the caller's membership."""

    org: Organization
    user: User
    membership: Membership

    @property
    def role(self) -> MemberRole:
        return self.membership.role

    def can(self, permission: Permission) -> bool:
        return role_has(self.membership.role, permission)


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
    """`Depends(OrgGuard(...))` for use in `Annotated[OrgContext, org_guard(...)]`."""
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
