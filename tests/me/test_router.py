"""`GET /auth/me`: the signed-in person with every organization they belong to."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import add_member, create_organization
from tests.orgs.conftest import NewClient, Team, make_team
from tests.orgs.helpers import API
from townsquare.orgs.enums import MemberRole


@pytest.fixture
async def team(session: AsyncSession, new_client: NewClient) -> Team:
    """An organization with a signed-in member of every role (see tests/orgs/conftest.py)."""
    return await make_team(session, new_client)


class TestMe:
    async def test_lists_organizations_with_real_avatars(
        self, team: Team, session: AsyncSession
    ) -> None:
        await team.clients[MemberRole.owner].patch(
            team.url(), json={"avatar_url": "https://cdn.example.com/acme.png"}
        )
        extra = await create_organization(session, name="Zeta Club")
        await add_member(session, extra, team.users[MemberRole.agent], MemberRole.member)

        me = (await team.clients[MemberRole.agent].get(f"{API}/auth/me")).json()

        assert me["organizations"] == [
            {
                "id": str(team.org.id),
                "name": "Acme",
                "slug": team.org.slug,
                "role": "agent",
                "avatar_url": "https://cdn.example.com/acme.png",
            },
            {
                "id": str(extra.id),
                "name": "Zeta Club",
                "slug": extra.slug,
                "role": "member",
                "avatar_url": None,
            },
        ]
