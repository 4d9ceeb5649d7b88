"""Members in the service layer: roles, removal, leaving, ownership, the list."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import add_member, create_user
from tests.orgs.conftest import audit_actions, membership_of, role_of
from tests.orgs.helpers import FIRST_PAGE, org_context, org_with
from townsquare.kit.pagination import PageParams
from townsquare.orgs import errors, members
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import AuditLogEntry


class TestChangeMemberRole:
    async def test_owner_changes_an_editor_to_agent(self, session: AsyncSession) -> None:
        org, owner, (editor,) = await org_with(session, MemberRole.editor)
        member = await membership_of(session, org, editor)

        result = await members.change_member_role(
            session, await org_context(session, org, owner), member.id, MemberRole.agent
        )

        assert result.role == MemberRole.agent
        assert await role_of(session, org, editor) == MemberRole.agent
        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.action == "member.role_changed")
        )
        assert entry is not None
        assert entry.organization_id == org.id
        assert entry.actor_id == owner.id
        assert entry.data == {"user_id": str(editor.id), "from": "editor", "to": "agent"}

    async def test_nobody_changes_their_own_role(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        ctx = await org_context(session, org, owner)
        with pytest.raises(errors.CannotChangeOwnRole):
            await members.change_member_role(session, ctx, ctx.membership.id, MemberRole.admin)

    async def test_nobody_is_made_owner_by_a_role_change(self, session: AsyncSession) -> None:
        org, owner, (admin,) = await org_with(session, MemberRole.admin)
        member = await membership_of(session, org, admin)
        with pytest.raises(errors.CannotGrantOwner):
            await members.change_member_role(
                session, await org_context(session, org, owner), member.id, MemberRole.owner
            )
        assert await role_of(session, org, admin) == MemberRole.admin

    async def test_admin_cannot_touch_an_owner(self, session: AsyncSession) -> None:
        org, owner, (admin,) = await org_with(session, MemberRole.admin)
        owner_member = await membership_of(session, org, owner)
        with pytest.raises(errors.CannotManageHigherRole):
            await members.change_member_role(
                session, await org_context(session, org, admin), owner_member.id, MemberRole.member
            )
        assert await role_of(session, org, owner) == MemberRole.owner

    async def test_admin_may_change_another_admin(self, session: AsyncSession) -> None:
        org, _, (admin, other) = await org_with(session, MemberRole.admin, MemberRole.admin)
        target = await membership_of(session, org, other)
        await members.change_member_role(
            session, await org_context(session, org, admin), target.id, MemberRole.editor
        )
        assert await role_of(session, org, other) == MemberRole.editor

    async def test_owner_demotes_a_co_owner(self, session: AsyncSession) -> None:
        org, owner, (co_owner,) = await org_with(session, MemberRole.owner)
        target = await membership_of(session, org, co_owner)
        await members.change_member_role(
            session, await org_context(session, org, owner), target.id, MemberRole.admin
        )
        assert await role_of(session, org, co_owner) == MemberRole.admin

    async def test_member_of_another_org_is_not_found(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        other_org, _, (stranger,) = await org_with(session, MemberRole.member)
        foreign = await membership_of(session, other_org, stranger)

        with pytest.raises(errors.MemberNotFound):
            await members.change_member_role(
                session, await org_context(session, org, owner), foreign.id, MemberRole.admin
            )

        assert await role_of(session, other_org, stranger) == MemberRole.member


class TestRemoveMember:
    async def test_admin_removes_an_editor(self, session: AsyncSession) -> None:
        org, _, (admin, editor) = await org_with(session, MemberRole.admin, MemberRole.editor)
        target = await membership_of(session, org, editor)

        await members.remove_member(session, await org_context(session, org, admin), target.id)

        assert await role_of(session, org, editor) is None
        assert "member.removed" in await audit_actions(session, org)

    async def test_admin_cannot_remove_an_owner(self, session: AsyncSession) -> None:
        org, owner, (admin,) = await org_with(session, MemberRole.admin)
        target = await membership_of(session, org, owner)
        with pytest.raises(errors.CannotManageHigherRole):
            await members.remove_member(session, await org_context(session, org, admin), target.id)
        assert await role_of(session, org, owner) == MemberRole.owner

    async def test_removing_oneself_as_last_owner_is_refused(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        ctx = await org_context(session, org, owner)
        with pytest.raises(errors.LastOwner):
            await members.remove_member(session, ctx, ctx.membership.id)
        assert await role_of(session, org, owner) == MemberRole.owner


class TestLeaveOrganization:
    async def test_member_leaves(self, session: AsyncSession) -> None:
        org, _, (member,) = await org_with(session, MemberRole.member)
        await members.leave_organization(session, await org_context(session, org, member))
        assert await role_of(session, org, member) is None
        assert "member.left" in await audit_actions(session, org)

    async def test_last_owner_cannot_leave(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session, MemberRole.admin)
        with pytest.raises(errors.LastOwner):
            await members.leave_organization(session, await org_context(session, org, owner))

    async def test_one_of_two_owners_may_leave(self, session: AsyncSession) -> None:
        org, owner, (co_owner,) = await org_with(session, MemberRole.owner)
        await members.leave_organization(session, await org_context(session, org, owner))
        assert await role_of(session, org, owner) is None
        assert await role_of(session, org, co_owner) == MemberRole.owner


class TestTransferOwnership:
    async def test_admin_becomes_owner_and_owner_admin(self, session: AsyncSession) -> None:
        org, owner, (admin,) = await org_with(session, MemberRole.admin)
        target = await membership_of(session, org, admin)

        result = await members.transfer_ownership(
            session, await org_context(session, org, owner), target.id
        )

        assert result.new_owner.user_id == admin.id
        assert result.previous_owner.role == MemberRole.admin
        assert await role_of(session, org, admin) == MemberRole.owner
        assert await role_of(session, org, owner) == MemberRole.admin
        assert "organization.ownership_transferred" in await audit_actions(session, org)

    @pytest.mark.parametrize("role", [MemberRole.editor, MemberRole.member, MemberRole.owner])
    async def test_only_to_an_admin(self, session: AsyncSession, role: MemberRole) -> None:
        org, owner, (other,) = await org_with(session, role)
        target = await membership_of(session, org, other)
        with pytest.raises(errors.TransferTargetNotAdmin):
            await members.transfer_ownership(
                session, await org_context(session, org, owner), target.id
            )
        assert await role_of(session, org, owner) == MemberRole.owner

    async def test_not_to_oneself(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        ctx = await org_context(session, org, owner)
        with pytest.raises(errors.TransferTargetNotAdmin):
            await members.transfer_ownership(session, ctx, ctx.membership.id)


class TestListMembers:
    async def test_filters_searches_and_pages(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session, MemberRole.editor, MemberRole.editor)
        ctx = await org_context(session, org, owner)
        ada = await create_user(session, display_name="Ada Lovelace", email="ada@example.com")
        await add_member(session, org, ada, MemberRole.agent)

        everyone, total = await members.list_members(session, ctx, FIRST_PAGE)
        editors, editor_total = await members.list_members(
            session, ctx, FIRST_PAGE, role=MemberRole.editor
        )
        by_name, _ = await members.list_members(session, ctx, FIRST_PAGE, q="LOVELACE")
        by_email, _ = await members.list_members(session, ctx, FIRST_PAGE, q="ada@exa")
        wildcard, _ = await members.list_members(session, ctx, FIRST_PAGE, q="%")
        second, paged_total = await members.list_members(
            session, ctx, PageParams(page=2, per_page=3)
        )

        assert total == 4
        assert len(everyone) == 4
        assert editor_total == 2
        assert {m.role for m in editors} == {MemberRole.editor}
        assert [m.display_name for m in by_name] == ["Ada Lovelace"]
        assert [m.email for m in by_email] == ["ada@example.com"]
        assert wildcard == []
        assert paged_total == 4
        assert len(second) == 1
