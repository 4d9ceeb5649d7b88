"""Invitations in the service layer: invite, resend, revoke, accept."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from tests.factories import add_member, create_user
from tests.orgs.conftest import audit_actions, role_of
from tests.orgs.helpers import SETTINGS, org_context, org_with
from townsquare.auth.errors import EmailNotVerified
from townsquare.email.models import OutboxEmail
from townsquare.kit import tokens
from townsquare.orgs import errors, invitations
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import InvitationStatus, MemberRole
from townsquare.orgs.models import Invitation, Organization


async def _outbox_to(session: AsyncSession, address: str) -> list[OutboxEmail]:
    rows = await session.scalars(
        select(OutboxEmail)
        .where(OutboxEmail.to_address == address)
        .order_by(OutboxEmail.created_at)
    )
    return list(rows.all())


class TestCreateInvitation:
    async def test_stores_only_a_hash_and_queues_the_email(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        settings = make_settings(INVITATION_TTL_SECONDS=3600)

        invitation, token = await invitations.create_invitation(
            session,
            await org_context(session, org, owner),
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
        org, owner, _ = await org_with(session)
        settings = make_settings(
            PUBLIC_URL="https://app.example.org/",
            INVITATION_URL="{public_url}/join?invite={token}",
        )
        _, token = await invitations.create_invitation(
            session,
            await org_context(session, org, owner),
            email="link@example.com",
            role=MemberRole.member,
            settings=settings,
        )
        (email,) = await _outbox_to(session, "link@example.com")
        assert f"https://app.example.org/join?invite={token}" in email.text_body
        assert email.html_body is not None
        assert f"https://app.example.org/join?invite={token}" in email.html_body

    async def test_never_as_owner(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        with pytest.raises(errors.CannotGrantOwner):
            await invitations.create_invitation(
                session,
                await org_context(session, org, owner),
                email="x@example.com",
                role=MemberRole.owner,
                settings=SETTINGS,
            )

    async def test_never_above_the_inviter(self, session: AsyncSession) -> None:
        org, _, (editor,) = await org_with(session, MemberRole.editor)
        with pytest.raises(errors.RoleAboveOwn):
            await invitations.create_invitation(
                session,
                await org_context(session, org, editor),
                email="x@example.com",
                role=MemberRole.admin,
                settings=SETTINGS,
            )

    async def test_a_member_is_not_invited(self, session: AsyncSession) -> None:
        org, owner, (member,) = await org_with(session, MemberRole.member)
        with pytest.raises(errors.AlreadyMember):
            await invitations.create_invitation(
                session,
                await org_context(session, org, owner),
                email=member.email.upper(),
                role=MemberRole.member,
                settings=SETTINGS,
            )

    async def test_a_live_invitation_to_the_same_address_conflicts(
        self, session: AsyncSession
    ) -> None:
        org, owner, _ = await org_with(session)
        ctx = await org_context(session, org, owner)
        first, _ = await invitations.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        with pytest.raises(errors.InvitationExists) as caught:
            await invitations.create_invitation(
                session, ctx, email="X@example.com", role=MemberRole.admin, settings=SETTINGS
            )
        assert caught.value.extra == {"invitation_id": str(first.id)}

    async def test_an_expired_one_is_replaced(
        self, session: AsyncSession, clock: ModuleType
    ) -> None:
        org, owner, _ = await org_with(session)
        ctx = await org_context(session, org, owner)
        first, _ = await invitations.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        clock.travel(timedelta(seconds=SETTINGS.INVITATION_TTL_SECONDS + 1))

        second, _ = await invitations.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.agent, settings=SETTINGS
        )

        await session.refresh(first)
        assert first.status == InvitationStatus.expired
        assert second.status == InvitationStatus.pending


class TestResendInvitation:
    async def test_new_token_and_expiry_old_link_dead(
        self, session: AsyncSession, clock: ModuleType
    ) -> None:
        org, owner, _ = await org_with(session)
        ctx = await org_context(session, org, owner)
        invitation, old_token = await invitations.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        old_expiry = invitation.expires_at
        clock.travel(timedelta(days=8))

        resent, new_token = await invitations.resend_invitation(
            session, ctx, invitation.id, settings=SETTINGS
        )

        assert new_token != old_token
        assert resent.expires_at > old_expiry + timedelta(days=7)
        assert resent.effective_status(clock.now()) == InvitationStatus.pending
        with pytest.raises(errors.InvitationNotFound):
            await invitations.preview_invitation(session, old_token)
        assert (await invitations.preview_invitation(session, new_token)).status == "pending"
        assert len(await _outbox_to(session, "x@example.com")) == 2

    async def test_revoked_is_not_resent(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        ctx = await org_context(session, org, owner)
        invitation, _ = await invitations.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        await invitations.revoke_invitation(session, ctx, invitation.id)
        with pytest.raises(errors.InvitationRevoked):
            await invitations.resend_invitation(session, ctx, invitation.id, settings=SETTINGS)


class TestRevokeInvitation:
    async def test_revoked_twice_changes_nothing(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        ctx = await org_context(session, org, owner)
        invitation, token = await invitations.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        await invitations.revoke_invitation(session, ctx, invitation.id)
        await invitations.revoke_invitation(session, ctx, invitation.id)

        assert (await invitations.preview_invitation(session, token)).status == "revoked"
        assert (await audit_actions(session, org)).count("invitation.revoked") == 1

    async def test_invitation_of_another_org_is_not_found(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        other, other_owner, _ = await org_with(session)
        foreign, _ = await invitations.create_invitation(
            session,
            await org_context(session, other, other_owner),
            email="x@example.com",
            role=MemberRole.member,
            settings=SETTINGS,
        )
        with pytest.raises(errors.InvitationNotFound):
            await invitations.revoke_invitation(
                session, await org_context(session, org, owner), foreign.id
            )
        await session.refresh(foreign)
        assert foreign.status == InvitationStatus.pending


class TestAcceptInvitation:
    async def _invite(
        self, session: AsyncSession, email: str = "guest@example.com"
    ) -> tuple[Organization, OrgContext, Invitation, str]:
        org, owner, _ = await org_with(session)
        ctx = await org_context(session, org, owner)
        invitation, token = await invitations.create_invitation(
            session, ctx, email=email, role=MemberRole.editor, settings=SETTINGS
        )
        return org, ctx, invitation, token

    async def test_joins_with_the_invited_role(self, session: AsyncSession) -> None:
        org, _, invitation, token = await self._invite(session)
        guest = await create_user(session, email="Guest@Example.com")

        joined, membership = await invitations.accept_invitation(session, guest, token)

        assert joined.id == org.id
        assert membership.role == MemberRole.editor
        assert await role_of(session, org, guest) == MemberRole.editor
        await session.refresh(invitation)
        assert invitation.status == InvitationStatus.accepted
        assert invitation.accepted_by_id == guest.id
        assert "invitation.accepted" in await audit_actions(session, org)

    async def test_unknown_token(self, session: AsyncSession) -> None:
        guest = await create_user(session)
        with pytest.raises(errors.InvitationNotFound):
            await invitations.accept_invitation(session, guest, tokens.new_token())

    async def test_expired(self, session: AsyncSession, clock: ModuleType) -> None:
        _, _, _, token = await self._invite(session)
        guest = await create_user(session, email="guest@example.com")
        clock.travel(timedelta(seconds=SETTINGS.INVITATION_TTL_SECONDS))
        with pytest.raises(errors.InvitationExpired):
            await invitations.accept_invitation(session, guest, token)

    async def test_revoked(self, session: AsyncSession) -> None:
        _, ctx, invitation, token = await self._invite(session)
        await invitations.revoke_invitation(session, ctx, invitation.id)
        guest = await create_user(session, email="guest@example.com")
        with pytest.raises(errors.InvitationRevoked):
            await invitations.accept_invitation(session, guest, token)

    async def test_accepted_twice(self, session: AsyncSession) -> None:
        _, _, _, token = await self._invite(session)
        guest = await create_user(session, email="guest@example.com")
        await invitations.accept_invitation(session, guest, token)
        with pytest.raises(errors.InvitationAlreadyAccepted):
            await invitations.accept_invitation(session, guest, token)

    async def test_other_address(self, session: AsyncSession) -> None:
        org, _, _, token = await self._invite(session)
        someone = await create_user(session, email="someone@example.com")
        with pytest.raises(errors.InvitationEmailMismatch):
            await invitations.accept_invitation(session, someone, token)
        assert await role_of(session, org, someone) is None

    async def test_unverified_address(self, session: AsyncSession) -> None:
        org, _, _, token = await self._invite(session)
        guest = await create_user(session, email="guest@example.com", verified=False)
        with pytest.raises(EmailNotVerified):
            await invitations.accept_invitation(session, guest, token)
        assert await role_of(session, org, guest) is None

    async def test_already_a_member(self, session: AsyncSession) -> None:
        org, _, _, token = await self._invite(session)
        guest = await create_user(session, email="guest@example.com")
        await add_member(session, org, guest, MemberRole.member)
        with pytest.raises(errors.AlreadyMember):
            await invitations.accept_invitation(session, guest, token)
        assert await role_of(session, org, guest) == MemberRole.member
