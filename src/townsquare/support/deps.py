"""Guards of the support routes: agents of the organization, and any signed-in user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy import and_, bindparam, select

from townsquare.auth.deps import CurrentUser
from townsquare.db import DbSession
from townsquare.kit.slugs import is_valid_slug
from townsquare.orgs.context import OrgContext
from townsquare.orgs.deps import org_guard
from townsquare.orgs.enums import Module, Permission
from townsquare.orgs.errors import ModuleDisabled, OrganizationNotFound
from townsquare.orgs.models import Membership, Organization, OrganizationModule
from townsquare.support.context import SupportCaller

SupportAgent = Annotated[OrgContext, org_guard(Permission.support_inbox, module=Module.support)]
"""Owners, admins and agents of an org whose `support` module is on: assignment, statuses,
canned responses, stats. Other members get 403, everybody else 404."""


# One statement, built once: the org, the caller's membership and whether support is on.
_ORG_FOR_CALLER = (
    select(
        Organization,
        Membership,
        select(OrganizationModule.module)
        .where(
            OrganizationModule.organization_id == Organization.id,
            OrganizationModule.module == Module.support,
        )
        .exists(),
    )
    .outerjoin(
        Membership,
        and_(
            Membership.organization_id == Organization.id,
            Membership.user_id == bindparam("user_id"),
        ),
    )
    .where(Organization.slug == bindparam("slug"))
)


async def support_caller(
    session: DbSession,
    user: CurrentUser,
    org: Annotated[str, Path(description="The organization's slug.", max_length=64)],
) -> SupportCaller:
    """Any signed-in user on an existing organization whose `support` module is on (404
    `organization_not_found` for no such org, 403 `module_disabled`); members or not."""
    if not is_valid_slug(org):
        raise OrganizationNotFound()
    row = (await session.execute(_ORG_FOR_CALLER, {"slug": org, "user_id": user.id})).first()
    if row is None:
        raise OrganizationNotFound()
    organization, membership, enabled = row
    if not enabled:
        raise ModuleDisabled()
    return SupportCaller(org=organization, user=user, membership=membership)


SupportUser = Annotated[SupportCaller, Depends(support_caller)]
"""Customers (any signed-in user, member of the org or not) and agents alike: opening,
reading and writing conversations. Services show each only what their side may see."""
