"""Fixtures of the CMS tests: an org with its cms module on and a signed-in editor."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import add_member, create_organization, create_user, sign_in
from townsquare.auth.models import User
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Organization


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
async def editor_client(
    session: AsyncSession, client: httpx.AsyncClient, editor: User, org: Organization
) -> httpx.AsyncClient:
    """`client`, signed in as an editor of `org`."""
    await sign_in(session, client, editor)
    return client
