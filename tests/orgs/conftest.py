"""Fixtures of the organization tests: an organization with one signed-in member per role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.email.servers import smtp_server
from tests.factories import add_member, create_organization, create_user, sign_in
from townsquare.auth.models import User
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import AuditLogEntry, Membership, Organization

__all__ = ["Team", "audit_actions", "make_team", "membership_of", "role_of", "smtp_server"]

ROLES_LOW_TO_HIGH = (
    MemberRole.member,
    MemberRole.agent,
    MemberRole.editor,
    MemberRole.admin,
    MemberRole.owner,
)

NewClient = Callable[[], Awaitable[httpx.AsyncClient]]


@dataclass
class Team:
    """One organization with a signed-in member of every role, an outsider who owns another
    organization, and an anonymous client."""

    org: Organization
    other_org: Organization
    users: dict[MemberRole, User]
    members: dict[MemberRole, Membership]
    clients: dict[MemberRole, httpx.AsyncClient]
    outsider: User
    outsider_member: Membership
    outsider_client: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    extra: dict[str, object] = field(default_factory=dict)

    def url(self, suffix: str = "") -> str:
        return f"/api/v1/orgs/{self.org.slug}{suffix}"


async def make_team(session: AsyncSession, new_client: NewClient) -> Team:
    owner = await create_user(session, display_name="Olive Owner", email=None)
    org = await create_organization(session, owner=owner, name="Acme")
    users: dict[MemberRole, User] = {MemberRole.owner: owner}
    members: dict[MemberRole, Membership] = {}
    for role in ROLES_LOW_TO_HIGH:
        if role == MemberRole.owner:
            continue
        users[role] = await create_user(session, display_name=f"{role.value.title()} Person")
        members[role] = await add_member(session, org, users[role], role)
    members[MemberRole.owner] = await membership_of(session, org, owner)
    clients: dict[MemberRole, httpx.AsyncClient] = {}
    for role, user in users.items():
        clients[role] = await new_client()
        await sign_in(session, clients[role], user)
    outsider = await create_user(session, display_name="Oscar Outsider")
    other_org = await create_organization(session, owner=outsider, name="Elsewhere")
    outsider_client = await new_client()
    await sign_in(session, outsider_client, outsider)
    return Team(
        org=org,
        other_org=other_org,
        users=users,
        members=members,
        clients=clients,
        outsider=outsider,
        outsider_member=await membership_of(session, other_org, outsider),
        outsider_client=outsider_client,
        anonymous=await new_client(),
    )


@pytest.fixture
async def team(session: AsyncSession, new_client: NewClient) -> Team:
    return await make_team(session, new_client)


async def membership_of(session: AsyncSession, org: Organization, user: User) -> Membership:
    found = await session.scalar(
        select(Membership)
        .where(Membership.organization_id == org.id, Membership.user_id == user.id)
        .execution_options(populate_existing=True)
    )
    assert found is not None
    return found


async def role_of(session: AsyncSession, org: Organization, user: User) -> MemberRole | None:
    """The user's current role in the organization (None: not a member), read afresh."""
    role = await session.scalar(
        select(Membership.role)
        .where(Membership.organization_id == org.id, Membership.user_id == user.id)
        .execution_options(populate_existing=True)
    )
    return role


async def audit_actions(session: AsyncSession, org: Organization) -> list[str]:
    """The organization's audit actions, oldest first."""
    rows = await session.scalars(
        select(AuditLogEntry.action)
        .where(AuditLogEntry.organization_id == org.id)
        .order_by(AuditLogEntry.created_at, AuditLogEntry.id)
    )
    return list(rows.all())
