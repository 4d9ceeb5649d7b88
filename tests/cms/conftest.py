"""Fixtures of the CMS tests: an org with its cms module on and a signed-in editor."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import add_member, create_organization, create_user, sign_in
from townsquare.auth.models import User
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Membership, Organization


async def context_for(
    session: AsyncSession, org: Organization, user: User, role: MemberRole = MemberRole.editor
) -> OrgContext:
    """`user` acting in `org` as the org guard resolves it; a member with `role` if not one yet."""
    membership = await session.scalar(
        select(Membership).where(
            Membership.organization_id == org.id, Membership.user_id == user.id
        )
    )
    if membership is None:
        membership = await add_member(session, org, user, role)
    return OrgContext(org=org, user=user, membership=membership)


@pytest.fixture
async def editor(session: AsyncSession) -> User:
    return await create_user(session, display_name="Edna Editor")


@pytest.fixture
async def org(session: AsyncSession, editor: User) -> Organization:
    owner = await create_user(session, display_name="Olga Owner")
    org = await create_organization(session, owner=owner)
    await add_member(session, org, editor, MemberRole.editor)
    return org


@pytest.fixture
async def ctx(session: AsyncSession, org: Organization, editor: User) -> OrgContext:
    """The editor acting in `org`."""
    return await context_for(session, org, editor)


@pytest.fixture
async def editor_client(
    session: AsyncSession, client: httpx.AsyncClient, editor: User, org: Organization
) -> httpx.AsyncClient:
    """`client`, signed in as an editor of `org`."""
    await sign_in(session, client, editor)
    return client
