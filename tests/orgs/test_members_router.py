"""The members API over HTTP: the list, roles, removal, leaving, ownership, other orgs' ids."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.orgs.conftest import Team, audit_actions, role_of
from tests.orgs.helpers import API, error_fields, problem
from townsquare.email.models import OutboxEmail
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Invitation


class TestListMembers:
    async def test_paged_filtered_and_searched(self, team: Team) -> None:
        member = team.clients[MemberRole.member]

        first = (await member.get(team.url("/members"), params={"per_page": 2})).json()
        third = (await member.get(team.url("/members"), params={"per_page": 2, "page": 3})).json()
        admins = (await member.get(team.url("/members"), params={"role": "admin"})).json()
        found = (await member.get(team.url("/members"), params={"q": "olive"})).json()
        by_email = await member.get(
            team.url("/members"), params={"q": team.users[MemberRole.agent].email[:15]}
        )

        assert (first["page"], first["per_page"], first["total"]) == (1, 2, 5)
        assert len(first["items"]) == 2
        assert len(third["items"]) == 1
        assert [m["role"] for m in admins["items"]] == ["admin"]
        assert [m["display_name"] for m in found["items"]] == ["Olive Owner"]
        assert [m["role"] for m in by_email.json()["items"]] == ["agent"]
        assert set(first["items"][0]) == {
            "id",
            "user_id",
            "display_name",
            "email",
            "avatar_url",
            "role",
            "joined_at",
        }

    async def test_bad_paging_and_filters_answer_422(self, team: Team) -> None:
        member = team.clients[MemberRole.member]
        for params in ({"per_page": 101}, {"page": 0}, {"role": "king"}, {"q": "a\x00b"}):
            response = await member.get(team.url("/members"), params=params)
            assert response.status_code == 422, params


class TestChangeMemberRole:
    async def test_admin_promotes_a_member_to_editor(
        self, team: Team, session: AsyncSession
    ) -> None:
        target = team.members[MemberRole.member]
        response = await team.clients[MemberRole.admin].patch(
            team.url(f"/members/{target.id}"), json={"role": "editor"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["role"] == "editor"
        assert await role_of(session, team.org, team.users[MemberRole.member]) == "editor"
        log = (await team.clients[MemberRole.admin].get(team.url("/audit-log"))).json()
        entry = log["items"][0]
        assert entry["action"] == "member.role_changed"
        assert entry["actor"]["display_name"] == "Admin Person"
        assert entry["data"]["from"] == "member"
        assert entry["data"]["to"] == "editor"

    @pytest.mark.parametrize(
        ("actor", "target", "role", "code"),
        [
            (MemberRole.owner, MemberRole.admin, "owner", "cannot_grant_owner"),
            (MemberRole.admin, MemberRole.editor, "owner", "cannot_grant_owner"),
            (MemberRole.admin, MemberRole.owner, "member", "cannot_manage_higher_role"),
            (MemberRole.admin, MemberRole.admin, "member", "cannot_change_own_role"),
            (MemberRole.owner, MemberRole.owner, "admin", "cannot_change_own_role"),
        ],
    )
    async def test_role_rules(
        self,
        team: Team,
        session: AsyncSession,
        actor: MemberRole,
        target: MemberRole,
        role: str,
        code: str,
    ) -> None:
        response = await team.clients[actor].patch(
            team.url(f"/members/{team.members[target].id}"), json={"role": role}
        )
        problem(response, 403, code)
        assert await role_of(session, team.org, team.users[target]) == target

    async def test_a_role_that_does_not_exist_answers_422(self, team: Team) -> None:
        response = await team.clients[MemberRole.owner].patch(
            team.url(f"/members/{team.members[MemberRole.member].id}"), json={"role": "root"}
        )
        assert "role" in error_fields(response)

    async def test_organization_id_in_the_body_is_refused(
        self, team: Team, session: AsyncSession
    ) -> None:
        target = team.members[MemberRole.member]
        response = await team.clients[MemberRole.owner].patch(
            team.url(f"/members/{target.id}"),
            json={"role": "editor", "organization_id": str(team.other_org.id)},
        )
        assert "organization_id" in error_fields(response)
        assert await role_of(session, team.org, team.users[MemberRole.member]) == "member"


class TestOtherOrganizationIds:
    """Ids of another organization answer 404 and change nothing there."""

    async def test_member_of_another_org(self, team: Team, session: AsyncSession) -> None:
        foreign = team.outsider_member
        owner = team.clients[MemberRole.owner]

        patched = await owner.patch(team.url(f"/members/{foreign.id}"), json={"role": "member"})
        deleted = await owner.delete(team.url(f"/members/{foreign.id}"))
        transferred = await owner.post(
            team.url("/transfer-ownership"), json={"member_id": str(foreign.id)}
        )

        for response in (patched, deleted, transferred):
            problem(response, 404, "member_not_found")
        assert await role_of(session, team.other_org, team.outsider) == MemberRole.owner

    async def test_invitation_of_another_org(self, team: Team, session: AsyncSession) -> None:
        created = await team.outsider_client.post(
            f"{API}/orgs/{team.other_org.slug}/invitations", json={"email": "z@example.com"}
        )
        assert created.status_code == 201
        foreign_id = created.json()["id"]
        owner = team.clients[MemberRole.owner]

        resent = await owner.post(team.url(f"/invitations/{foreign_id}/resend"))
        revoked = await owner.delete(team.url(f"/invitations/{foreign_id}"))
        listed = (await owner.get(team.url("/invitations"))).json()

        problem(resent, 404, "invitation_not_found")
        problem(revoked, 404, "invitation_not_found")
        assert listed["total"] == 0
        invitation = await session.get(Invitation, uuid.UUID(foreign_id), populate_existing=True)
        assert invitation is not None
        assert invitation.status == "pending"
        outbox = await session.scalar(
            select(func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.to_address == "z@example.com")
        )
        assert outbox == 1

    async def test_another_orgs_slug_with_own_member_id(
        self, team: Team, session: AsyncSession
    ) -> None:
        response = await team.clients[MemberRole.owner].delete(
            f"{API}/orgs/{team.other_org.slug}/members/{team.outsider_member.id}"
        )
        problem(response, 404, "organization_not_found")
        assert await role_of(session, team.other_org, team.outsider) == MemberRole.owner


class TestRemoveMember:
    async def test_admin_removes_an_agent(self, team: Team, session: AsyncSession) -> None:
        target = team.members[MemberRole.agent]
        response = await team.clients[MemberRole.admin].delete(team.url(f"/members/{target.id}"))
        assert response.status_code == 204
        assert await role_of(session, team.org, team.users[MemberRole.agent]) is None
        problem(await team.clients[MemberRole.agent].get(team.url()), 404, "organization_not_found")
        assert "member.removed" in await audit_actions(session, team.org)

    async def test_admin_cannot_remove_the_owner(self, team: Team, session: AsyncSession) -> None:
        target = team.members[MemberRole.owner]
        response = await team.clients[MemberRole.admin].delete(team.url(f"/members/{target.id}"))
        problem(response, 403, "cannot_manage_higher_role")
        assert await role_of(session, team.org, team.users[MemberRole.owner]) == "owner"

    async def test_unknown_member_answers_404(self, team: Team) -> None:
        response = await team.clients[MemberRole.owner].delete(team.url(f"/members/{uuid.uuid4()}"))
        problem(response, 404, "member_not_found")


class TestLeave:
    async def test_editor_leaves(self, team: Team, session: AsyncSession) -> None:
        response = await team.clients[MemberRole.editor].post(team.url("/leave"))
        assert response.status_code == 204
        assert await role_of(session, team.org, team.users[MemberRole.editor]) is None
        assert "member.left" in await audit_actions(session, team.org)

    async def test_last_owner_must_transfer_first(self, team: Team, session: AsyncSession) -> None:
        response = await team.clients[MemberRole.owner].post(team.url("/leave"))
        problem(response, 409, "last_owner")
        assert await role_of(session, team.org, team.users[MemberRole.owner]) == "owner"


class TestTransferOwnership:
    async def test_admin_becomes_owner_in_one_step(self, team: Team, session: AsyncSession) -> None:
        admin = team.members[MemberRole.admin]
        response = await team.clients[MemberRole.owner].post(
            team.url("/transfer-ownership"), json={"member_id": str(admin.id)}
        )

        assert response.status_code == 200, response.text
        assert response.json()["new_owner"]["role"] == "owner"
        assert response.json()["previous_owner"]["role"] == "admin"
        assert await role_of(session, team.org, team.users[MemberRole.admin]) == "owner"
        assert await role_of(session, team.org, team.users[MemberRole.owner]) == "admin"
        # The former owner is an admin now: no more deleting the organization.
        problem(await team.clients[MemberRole.owner].delete(team.url()), 403, "permission_denied")

    async def test_only_to_an_admin(self, team: Team, session: AsyncSession) -> None:
        editor = team.members[MemberRole.editor]
        response = await team.clients[MemberRole.owner].post(
            team.url("/transfer-ownership"), json={"member_id": str(editor.id)}
        )
        problem(response, 409, "transfer_target_not_admin")
        assert await role_of(session, team.org, team.users[MemberRole.owner]) == "owner"

    async def test_admin_cannot_transfer(self, team: Team) -> None:
        response = await team.clients[MemberRole.admin].post(
            team.url("/transfer-ownership"),
            json={"member_id": str(team.members[MemberRole.admin].id)},
        )
        problem(response, 403, "permission_denied")
