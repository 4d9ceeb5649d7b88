"""Business rules of organizations, members, invitations and modules (service layer)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from types import ModuleType

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from tests.factories import add_member, create_organization, create_user
from tests.orgs.conftest import audit_actions, membership_of, role_of
from townsquare.auth.models import User
from townsquare.db import Base
from townsquare.email.models import OutboxEmail
from townsquare.kit import tokens
from townsquare.kit.pagination import PageParams
from townsquare.orgs import service
from townsquare.orgs.deps import OrgContext, module_enabled
from townsquare.orgs.enums import InvitationStatus, MemberRole, Module
from townsquare.orgs.models import (
    AuditLogEntry,
    Invitation,
    Membership,
    Organization,
    OrganizationModule,
)

SETTINGS = make_settings()
FIRST_PAGE = PageParams(page=1, per_page=20)


async def _ctx(session: AsyncSession, org: Organization, user: User) -> OrgContext:
    return OrgContext(org=org, user=user, membership=await membership_of(session, org, user))


async def _org_with(
    session: AsyncSession, *roles: MemberRole
) -> tuple[Organization, User, list[User]]:
    owner = await create_user(session, display_name="Owner")
    org = await create_organization(session, owner=owner, name="Acme")
    others = []
    for role in roles:
        user = await create_user(session, display_name=f"{role.value} user")
        await add_member(session, org, user, role)
        others.append(user)
    return org, owner, others


async def _outbox_to(session: AsyncSession, address: str) -> list[OutboxEmail]:
    rows = await session.scalars(
        select(OutboxEmail)
        .where(OutboxEmail.to_address == address)
        .order_by(OutboxEmail.created_at)
    )
    return list(rows.all())


class TestCreateOrganization:
    async def test_creator_owns_it_with_default_modules_and_timezone(
        self, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        settings = make_settings(DEFAULT_MODULES=["events"], DEFAULT_TIMEZONE="Europe/Paris")

        org = await service.create_organization(
            session,
            user,
            name="Tenant One",
            slug=None,
            avatar_url=None,
            timezone=None,
            settings=settings,
        )

        assert org.slug == "tenant-one"
        assert org.timezone == "Europe/Paris"
        assert await service.get_modules(session, org.id) == [Module.events]
        assert await role_of(session, org, user) == MemberRole.owner
        assert await audit_actions(session, org) == ["organization.created"]

    async def test_given_timezone_wins(self, session: AsyncSession) -> None:
        user = await create_user(session)
        org = await service.create_organization(
            session,
            user,
            name="Tokyo Club",
            slug=None,
            avatar_url=None,
            timezone="Asia/Tokyo",
            settings=SETTINGS,
        )
        assert org.timezone == "Asia/Tokyo"

    async def test_explicit_slug_taken_suggests_a_free_one(self, session: AsyncSession) -> None:
        user = await create_user(session)
        await create_organization(session, slug="acme")
        await create_organization(session, slug="acme-2")

        with pytest.raises(service.SlugTaken) as caught:
            await service.create_organization(
                session,
                user,
                name="Acme",
                slug="acme",
                avatar_url=None,
                timezone=None,
                settings=SETTINGS,
            )

        assert caught.value.extra == {"suggestion": "acme-3"}

    async def test_slug_from_the_name_takes_a_suffix(self, session: AsyncSession) -> None:
        user = await create_user(session)
        await create_organization(session, slug="garden-club")

        org = await service.create_organization(
            session,
            user,
            name="Garden Club!",
            slug=None,
            avatar_url=None,
            timezone=None,
            settings=SETTINGS,
        )

        assert org.slug == "garden-club-2"


class TestSuggestSlug:
    async def test_long_slugs_stay_within_the_column(self, session: AsyncSession) -> None:
        base = "a" * 64
        await create_organization(session, slug=base)
        suggestion = await service.suggest_slug(session, base)
        assert len(suggestion) <= 64
        assert suggestion.endswith("-2")


class TestUpdateOrganization:
    async def test_audits_what_changed(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        ctx = await _ctx(session, org, owner)

        await service.update_organization(
            session, ctx, {"name": "Acme Ltd", "timezone": org.timezone, "avatar_url": None}
        )

        entry = await session.scalar(
            select(AuditLogEntry).where(
                AuditLogEntry.organization_id == org.id,
                AuditLogEntry.action == "organization.updated",
            )
        )
        assert entry is not None
        assert entry.data == {"changes": {"name": {"from": "Acme", "to": "Acme Ltd"}}}

    async def test_no_change_writes_no_entry(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        await service.update_organization(
            session, await _ctx(session, org, owner), {"name": "Acme"}
        )
        assert "organization.updated" not in await audit_actions(session, org)

    async def test_slug_of_another_org(self, session: AsyncSession) -> None:
        await create_organization(session, slug="taken")
        org, owner, _ = await _org_with(session)

        with pytest.raises(service.SlugTaken) as caught:
            await service.update_organization(
                session, await _ctx(session, org, owner), {"slug": "taken"}
            )

        assert caught.value.extra == {"suggestion": "taken-2"}


class TestChangeMemberRole:
    async def test_owner_changes_an_editor_to_agent(self, session: AsyncSession) -> None:
        org, owner, (editor,) = await _org_with(session, MemberRole.editor)
        member = await membership_of(session, org, editor)

        result = await service.change_member_role(
            session, await _ctx(session, org, owner), member.id, MemberRole.agent
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
        org, owner, _ = await _org_with(session)
        ctx = await _ctx(session, org, owner)
        with pytest.raises(service.CannotChangeOwnRole):
            await service.change_member_role(session, ctx, ctx.membership.id, MemberRole.admin)

    async def test_nobody_is_made_owner_by_a_role_change(self, session: AsyncSession) -> None:
        org, owner, (admin,) = await _org_with(session, MemberRole.admin)
        member = await membership_of(session, org, admin)
        with pytest.raises(service.CannotGrantOwner):
            await service.change_member_role(
                session, await _ctx(session, org, owner), member.id, MemberRole.owner
            )
        assert await role_of(session, org, admin) == MemberRole.admin

    async def test_admin_cannot_touch_an_owner(self, session: AsyncSession) -> None:
        org, owner, (admin,) = await _org_with(session, MemberRole.admin)
        owner_member = await membership_of(session, org, owner)
        with pytest.raises(service.CannotManageHigherRole):
            await service.change_member_role(
                session, await _ctx(session, org, admin), owner_member.id, MemberRole.member
            )
        assert await role_of(session, org, owner) == MemberRole.owner

    async def test_admin_may_change_another_admin(self, session: AsyncSession) -> None:
        org, _, (admin, other) = await _org_with(session, MemberRole.admin, MemberRole.admin)
        target = await membership_of(session, org, other)
        await service.change_member_role(
            session, await _ctx(session, org, admin), target.id, MemberRole.editor
        )
        assert await role_of(session, org, other) == MemberRole.editor

    async def test_owner_demotes_a_co_owner(self, session: AsyncSession) -> None:
        org, owner, (co_owner,) = await _org_with(session, MemberRole.owner)
        target = await membership_of(session, org, co_owner)
        await service.change_member_role(
            session, await _ctx(session, org, owner), target.id, MemberRole.admin
        )
        assert await role_of(session, org, co_owner) == MemberRole.admin

    async def test_member_of_another_org_is_not_found(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        other_org, _, (stranger,) = await _org_with(session, MemberRole.member)
        foreign = await membership_of(session, other_org, stranger)

        with pytest.raises(service.MemberNotFound):
            await service.change_member_role(
                session, await _ctx(session, org, owner), foreign.id, MemberRole.admin
            )

        assert await role_of(session, other_org, stranger) == MemberRole.member


class TestRemoveMember:
    async def test_admin_removes_an_editor(self, session: AsyncSession) -> None:
        org, _, (admin, editor) = await _org_with(session, MemberRole.admin, MemberRole.editor)
        target = await membership_of(session, org, editor)

        await service.remove_member(session, await _ctx(session, org, admin), target.id)

        assert await role_of(session, org, editor) is None
        assert "member.removed" in await audit_actions(session, org)

    async def test_admin_cannot_remove_an_owner(self, session: AsyncSession) -> None:
        org, owner, (admin,) = await _org_with(session, MemberRole.admin)
        target = await membership_of(session, org, owner)
        with pytest.raises(service.CannotManageHigherRole):
            await service.remove_member(session, await _ctx(session, org, admin), target.id)
        assert await role_of(session, org, owner) == MemberRole.owner

    async def test_removing_oneself_as_last_owner_is_refused(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        ctx = await _ctx(session, org, owner)
        with pytest.raises(service.LastOwner):
            await service.remove_member(session, ctx, ctx.membership.id)
        assert await role_of(session, org, owner) == MemberRole.owner


class TestLeaveOrganization:
    async def test_member_leaves(self, session: AsyncSession) -> None:
        org, _, (member,) = await _org_with(session, MemberRole.member)
        await service.leave_organization(session, await _ctx(session, org, member))
        assert await role_of(session, org, member) is None
        assert "member.left" in await audit_actions(session, org)

    async def test_last_owner_cannot_leave(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session, MemberRole.admin)
        with pytest.raises(service.LastOwner):
            await service.leave_organization(session, await _ctx(session, org, owner))

    async def test_one_of_two_owners_may_leave(self, session: AsyncSession) -> None:
        org, owner, (co_owner,) = await _org_with(session, MemberRole.owner)
        await service.leave_organization(session, await _ctx(session, org, owner))
        assert await role_of(session, org, owner) is None
        assert await role_of(session, org, co_owner) == MemberRole.owner


class TestTransferOwnership:
    async def test_admin_becomes_owner_and_owner_admin(self, session: AsyncSession) -> None:
        org, owner, (admin,) = await _org_with(session, MemberRole.admin)
        target = await membership_of(session, org, admin)

        result = await service.transfer_ownership(
            session, await _ctx(session, org, owner), target.id
        )

        assert result.new_owner.user_id == admin.id
        assert result.previous_owner.role == MemberRole.admin
        assert await role_of(session, org, admin) == MemberRole.owner
        assert await role_of(session, org, owner) == MemberRole.admin
        assert "organization.ownership_transferred" in await audit_actions(session, org)

    @pytest.mark.parametrize("role", [MemberRole.editor, MemberRole.member, MemberRole.owner])
    async def test_only_to_an_admin(self, session: AsyncSession, role: MemberRole) -> None:
        org, owner, (other,) = await _org_with(session, role)
        target = await membership_of(session, org, other)
        with pytest.raises(service.TransferTargetNotAdmin):
            await service.transfer_ownership(session, await _ctx(session, org, owner), target.id)
        assert await role_of(session, org, owner) == MemberRole.owner

    async def test_not_to_oneself(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        ctx = await _ctx(session, org, owner)
        with pytest.raises(service.TransferTargetNotAdmin):
            await service.transfer_ownership(session, ctx, ctx.membership.id)


class TestCreateInvitation:
    async def test_stores_only_a_hash_and_queues_the_email(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        settings = make_settings(INVITATION_TTL_SECONDS=3600)

        invitation, token = await service.create_invitation(
            session,
            await _ctx(session, org, owner),
            email="New.Person@Example.com",
            role=MemberRole.editor,
            settings=settings,
        )

        assert len(token) >= 22  # >= 128 bits, URL-safe base64
        assert invitation.email == "new.person@example.com"
        assert invitation.token_hash == tokens.hash_token(token)
        assert token not in invitation.token_hash
        delta = invitation.expires_at - invitation.created_at
        assert timedelta(seconds=3590) < delta <= timedelta(seconds=3600)
        (email,) = await _outbox_to(session, "new.person@example.com")
        assert email.template == "invitation"
        assert f"http://testserver/invitations/{token}" in email.text_body
        assert "Acme" in email.subject
        assert "invitation.created" in await audit_actions(session, org)

    async def test_link_follows_the_invitation_url_setting(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        settings = make_settings(
            PUBLIC_URL="https://app.example.org/",
            INVITATION_URL="{public_url}/join?invite={token}",
        )
        _, token = await service.create_invitation(
            session,
            await _ctx(session, org, owner),
            email="link@example.com",
            role=MemberRole.member,
            settings=settings,
        )
        (email,) = await _outbox_to(session, "link@example.com")
        assert f"https://app.example.org/join?invite={token}" in email.text_body
        assert email.html_body is not None
        assert f"https://app.example.org/join?invite={token}" in email.html_body

    async def test_never_as_owner(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        with pytest.raises(service.CannotGrantOwner):
            await service.create_invitation(
                session,
                await _ctx(session, org, owner),
                email="x@example.com",
                role=MemberRole.owner,
                settings=SETTINGS,
            )

    async def test_never_above_the_inviter(self, session: AsyncSession) -> None:
        org, _, (editor,) = await _org_with(session, MemberRole.editor)
        with pytest.raises(service.RoleAboveOwn):
            await service.create_invitation(
                session,
                await _ctx(session, org, editor),
                email="x@example.com",
                role=MemberRole.admin,
                settings=SETTINGS,
            )

    async def test_a_member_is_not_invited(self, session: AsyncSession) -> None:
        org, owner, (member,) = await _org_with(session, MemberRole.member)
        with pytest.raises(service.AlreadyMember):
            await service.create_invitation(
                session,
                await _ctx(session, org, owner),
                email=member.email.upper(),
                role=MemberRole.member,
                settings=SETTINGS,
            )

    async def test_a_live_invitation_to_the_same_address_conflicts(
        self, session: AsyncSession
    ) -> None:
        org, owner, _ = await _org_with(session)
        ctx = await _ctx(session, org, owner)
        first, _ = await service.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        with pytest.raises(service.InvitationExists) as caught:
            await service.create_invitation(
                session, ctx, email="X@example.com", role=MemberRole.admin, settings=SETTINGS
            )
        assert caught.value.extra == {"invitation_id": str(first.id)}

    async def test_an_expired_one_is_replaced(
        self, session: AsyncSession, clock: ModuleType
    ) -> None:
        org, owner, _ = await _org_with(session)
        ctx = await _ctx(session, org, owner)
        first, _ = await service.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        clock.travel(timedelta(seconds=SETTINGS.INVITATION_TTL_SECONDS + 1))

        second, _ = await service.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.agent, settings=SETTINGS
        )

        await session.refresh(first)
        assert first.status == InvitationStatus.expired
        assert second.status == InvitationStatus.pending


class TestResendInvitation:
    async def test_new_token_and_expiry_old_link_dead(
        self, session: AsyncSession, clock: ModuleType
    ) -> None:
        org, owner, _ = await _org_with(session)
        ctx = await _ctx(session, org, owner)
        invitation, old_token = await service.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        old_expiry = invitation.expires_at
        clock.travel(timedelta(days=8))

        resent, new_token = await service.resend_invitation(
            session, ctx, invitation.id, settings=SETTINGS
        )

        assert new_token != old_token
        assert resent.expires_at > old_expiry + timedelta(days=7)
        assert resent.effective_status(clock.now()) == InvitationStatus.pending
        with pytest.raises(service.InvitationNotFound):
            await service.preview_invitation(session, old_token)
        assert (await service.preview_invitation(session, new_token)).status == "pending"
        assert len(await _outbox_to(session, "x@example.com")) == 2

    async def test_revoked_is_not_resent(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        ctx = await _ctx(session, org, owner)
        invitation, _ = await service.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        await service.revoke_invitation(session, ctx, invitation.id)
        with pytest.raises(service.InvitationRevoked):
            await service.resend_invitation(session, ctx, invitation.id, settings=SETTINGS)


class TestRevokeInvitation:
    async def test_revoked_twice_changes_nothing(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        ctx = await _ctx(session, org, owner)
        invitation, token = await service.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        await service.revoke_invitation(session, ctx, invitation.id)
        await service.revoke_invitation(session, ctx, invitation.id)

        assert (await service.preview_invitation(session, token)).status == "revoked"
        assert (await audit_actions(session, org)).count("invitation.revoked") == 1

    async def test_invitation_of_another_org_is_not_found(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        other, other_owner, _ = await _org_with(session)
        foreign, _ = await service.create_invitation(
            session,
            await _ctx(session, other, other_owner),
            email="x@example.com",
            role=MemberRole.member,
            settings=SETTINGS,
        )
        with pytest.raises(service.InvitationNotFound):
            await service.revoke_invitation(session, await _ctx(session, org, owner), foreign.id)
        await session.refresh(foreign)
        assert foreign.status == InvitationStatus.pending


class TestAcceptInvitation:
    async def _invite(
        self, session: AsyncSession, email: str = "guest@example.com"
    ) -> tuple[Organization, OrgContext, Invitation, str]:
        org, owner, _ = await _org_with(session)
        ctx = await _ctx(session, org, owner)
        invitation, token = await service.create_invitation(
            session, ctx, email=email, role=MemberRole.editor, settings=SETTINGS
        )
        return org, ctx, invitation, token

    async def test_joins_with_the_invited_role(self, session: AsyncSession) -> None:
        org, _, invitation, token = await self._invite(session)
        guest = await create_user(session, email="Guest@Example.com")

        joined, membership = await service.accept_invitation(session, guest, token)

        assert joined.id == org.id
        assert membership.role == MemberRole.editor
        assert await role_of(session, org, guest) == MemberRole.editor
        await session.refresh(invitation)
        assert invitation.status == InvitationStatus.accepted
        assert invitation.accepted_by_id == guest.id
        assert "invitation.accepted" in await audit_actions(session, org)

    async def test_unknown_token(self, session: AsyncSession) -> None:
        guest = await create_user(session)
        with pytest.raises(service.InvitationNotFound):
            await service.accept_invitation(session, guest, tokens.new_token())

    async def test_expired(self, session: AsyncSession, clock: ModuleType) -> None:
        _, _, _, token = await self._invite(session)
        guest = await create_user(session, email="guest@example.com")
        clock.travel(timedelta(seconds=SETTINGS.INVITATION_TTL_SECONDS))
        with pytest.raises(service.InvitationExpired):
            await service.accept_invitation(session, guest, token)

    async def test_revoked(self, session: AsyncSession) -> None:
        _, ctx, invitation, token = await self._invite(session)
        await service.revoke_invitation(session, ctx, invitation.id)
        guest = await create_user(session, email="guest@example.com")
        with pytest.raises(service.InvitationRevoked):
            await service.accept_invitation(session, guest, token)

    async def test_accepted_twice(self, session: AsyncSession) -> None:
        _, _, _, token = await self._invite(session)
        guest = await create_user(session, email="guest@example.com")
        await service.accept_invitation(session, guest, token)
        with pytest.raises(service.InvitationAlreadyAccepted):
            await service.accept_invitation(session, guest, token)

    async def test_other_address(self, session: AsyncSession) -> None:
        org, _, _, token = await self._invite(session)
        someone = await create_user(session, email="someone@example.com")
        with pytest.raises(service.InvitationEmailMismatch):
            await service.accept_invitation(session, someone, token)
        assert await role_of(session, org, someone) is None

    async def test_unverified_address(self, session: AsyncSession) -> None:
        org, _, _, token = await self._invite(session)
        guest = await create_user(session, email="guest@example.com", verified=False)
        with pytest.raises(service.EmailNotVerified):
            await service.accept_invitation(session, guest, token)
        assert await role_of(session, org, guest) is None

    async def test_already_a_member(self, session: AsyncSession) -> None:
        org, _, _, token = await self._invite(session)
        guest = await create_user(session, email="guest@example.com")
        await add_member(session, org, guest, MemberRole.member)
        with pytest.raises(service.AlreadyMember):
            await service.accept_invitation(session, guest, token)
        assert await role_of(session, org, guest) == MemberRole.member


class TestListMembers:
    async def test_filters_searches_and_pages(self, session: AsyncSession) -> None:
        org, _, _ = await _org_with(session, MemberRole.editor, MemberRole.editor)
        ada = await create_user(session, display_name="Ada Lovelace", email="ada@example.com")
        await add_member(session, org, ada, MemberRole.agent)

        everyone, total = await service.list_members(session, org.id, FIRST_PAGE)
        editors, editor_total = await service.list_members(
            session, org.id, FIRST_PAGE, role=MemberRole.editor
        )
        by_name, _ = await service.list_members(session, org.id, FIRST_PAGE, q="LOVELACE")
        by_email, _ = await service.list_members(session, org.id, FIRST_PAGE, q="ada@exa")
        wildcard, _ = await service.list_members(session, org.id, FIRST_PAGE, q="%")
        second, paged_total = await service.list_members(
            session, org.id, PageParams(page=2, per_page=3)
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


class TestListMembershipsForUser:
    async def test_names_slugs_roles_and_real_avatars(self, session: AsyncSession) -> None:
        user = await create_user(session)
        first = await create_organization(session, owner=user, name="Alpha")
        first.avatar_url = "https://cdn.example.com/alpha.png"
        second = await create_organization(session, name="Beta")
        await add_member(session, second, user, MemberRole.agent)
        await create_organization(session, name="Gamma")

        found = await service.list_memberships_for_user(session, user.id)

        assert [(o.name, o.slug, o.role, o.avatar_url) for o in found] == [
            ("Alpha", first.slug, MemberRole.owner, "https://cdn.example.com/alpha.png"),
            ("Beta", second.slug, MemberRole.agent, None),
        ]


class TestDeleteOrganization:
    async def test_everything_of_the_org_goes(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session, MemberRole.member)
        ctx = await _ctx(session, org, owner)
        await service.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        survivor = await create_organization(session, owner=owner)

        await service.delete_organization(session, ctx)

        for model in (Membership, OrganizationModule, Invitation, AuditLogEntry):
            count = await session.scalar(
                select(func.count()).select_from(model).where(model.organization_id == org.id)
            )
            assert count == 0, model.__name__
        assert await session.get(Organization, org.id, populate_existing=True) is None
        assert await role_of(session, survivor, owner) == MemberRole.owner


class TestTenantTables:
    def test_every_reference_to_an_organization_cascades(self) -> None:
        """Deleting an organization removes its rows in every domain's tables."""
        references = [
            (table.name, fk.parent.name, fk.ondelete)
            for table in Base.metadata.sorted_tables
            for fk in table.foreign_keys
            if fk.column.table.name == "organizations"
        ]
        assert ("memberships", "organization_id", "CASCADE") in references
        assert [r for r in references if r[2] != "CASCADE"] == []


class TestSetModules:
    async def test_switches_modules_and_audits(self, session: AsyncSession) -> None:
        org, owner, _ = await _org_with(session)
        ctx = await _ctx(session, org, owner)

        result = await service.set_modules(session, ctx, [Module.support, Module.cms, Module.cms])

        assert result == [Module.cms, Module.support]
        assert not await module_enabled(session, org.id, Module.events)
        assert await module_enabled(session, org.id, Module.support)
        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.action == "modules.updated")
        )
        assert entry is not None
        assert entry.data == {"enabled": [], "disabled": ["events"]}


class TestListAuditLog:
    async def test_newest_first_with_actor_names(
        self, session: AsyncSession, clock: ModuleType
    ) -> None:
        org, _, (member,) = await _org_with(session, MemberRole.member)
        await service.record_audit(
            session, organization_id=org.id, actor_id=None, action="article.created"
        )
        clock.travel(timedelta(seconds=1))
        await service.record_audit(
            session,
            organization_id=org.id,
            actor_id=member.id,
            action="article.published",
            target_type="article",
            target_id=uuid.uuid4(),
            data={"title": "Hi"},
        )

        items, total = await service.list_audit_log(session, org.id, FIRST_PAGE)
        published, published_total = await service.list_audit_log(
            session, org.id, FIRST_PAGE, action="article.published"
        )

        assert total == 2
        assert [i.action for i in items] == ["article.published", "article.created"]
        assert items[1].actor is None
        assert published_total == 1
        assert published[0].actor is not None
        assert published[0].actor.display_name == "member user"
        assert published[0].data == {"title": "Hi"}
        assert re.fullmatch(r"[0-9a-f-]{36}", published[0].target_id or "")
