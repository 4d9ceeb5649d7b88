"""The invitations API over HTTP: the email and its link, list, resend, revoke, accept."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, make_settings
from tests.email.servers import SmtpServer
from tests.factories import add_member, create_user
from tests.orgs.conftest import NewClient, Team, audit_actions, role_of
from tests.orgs.helpers import API, problem, signed_in
from townsquare.auth.models import User
from townsquare.email.delivery import deliver_batch
from townsquare.email.models import OutboxEmail
from townsquare.kit import clock
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Invitation


def _token_from(text: str) -> str:
    match = re.search(r"http://testserver/invitations/([A-Za-z0-9_-]+)", text)
    assert match is not None, text
    return match.group(1)


async def _invitation_token(session: AsyncSession, address: str) -> str:
    """The token in the newest invitation email to `address` (read from the outbox)."""
    body = await session.scalar(
        select(OutboxEmail.text_body)
        .where(OutboxEmail.to_address == address)
        .order_by(OutboxEmail.created_at.desc())
        .limit(1)
    )
    assert body is not None
    return _token_from(body)


async def _expire_invitations(session: AsyncSession) -> None:
    """Move every pending invitation's expiry into the past (sessions outlive no 7-day jump)."""
    await session.execute(
        update(Invitation)
        .where(Invitation.status == "pending")
        .values(expires_at=clock.now() - timedelta(seconds=1))
    )
    await session.flush()


class TestInvitationEmail:
    async def test_arrives_by_smtp_and_its_link_accepts(
        self,
        team: Team,
        db: RolledBackDatabase,
        session: AsyncSession,
        new_client: NewClient,
        smtp_server: SmtpServer,
    ) -> None:
        created = await team.clients[MemberRole.admin].post(
            team.url("/invitations"), json={"email": "Newcomer@Example.com", "role": "editor"}
        )
        assert created.status_code == 201, created.text
        assert "token" not in created.text

        smtp_settings = make_settings(**smtp_server.settings())
        assert await deliver_batch(db, smtp_settings, worker_id="orgs-test") == 1

        (message,) = smtp_server.messages
        assert message["To"] == "newcomer@example.com"
        assert "Acme" in message["Subject"]
        text = message.get_body(preferencelist=("plain",))
        assert text is not None
        token = _token_from(text.get_content())
        assert len(token) >= 22

        newcomer = await create_user(
            session, email="newcomer@example.com", display_name="New Comer"
        )
        client = await signed_in(session, new_client, newcomer)
        preview = await client.get(f"{API}/invitations/{token}")
        assert preview.status_code == 200
        assert preview.json() | {"expires_at": None} == {
            "organization_name": "Acme",
            "organization_slug": team.org.slug,
            "organization_avatar_url": None,
            "email": "newcomer@example.com",
            "role": "editor",
            "inviter_display_name": "Admin Person",
            "expires_at": None,
            "status": "pending",
        }

        accepted = await client.post(f"{API}/invitations/{token}/accept")

        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["organization"]["slug"] == team.org.slug
        assert accepted.json()["organization"]["role"] == "editor"
        assert (await client.get(team.url())).json()["role"] == "editor"
        me = (await client.get(f"{API}/auth/me")).json()
        assert [(o["slug"], o["role"]) for o in me["organizations"]] == [(team.org.slug, "editor")]
        assert "invitation.accepted" in await audit_actions(session, team.org)


class TestInvitations:
    async def test_listed_by_status(self, team: Team, session: AsyncSession) -> None:
        owner = team.clients[MemberRole.owner]
        for address in ("a@example.com", "b@example.com", "c@example.com"):
            created = await owner.post(team.url("/invitations"), json={"email": address})
            assert created.status_code == 201
        revoke_id = (await owner.get(team.url("/invitations"))).json()["items"][0]["id"]
        await owner.delete(team.url(f"/invitations/{revoke_id}"))

        async def statuses(status: str) -> list[str]:
            page = (await owner.get(team.url("/invitations"), params={"status": status})).json()
            return sorted(i["email"] for i in page["items"])

        assert await statuses("pending") == ["a@example.com", "b@example.com"]
        assert await statuses("revoked") == ["c@example.com"]
        await _expire_invitations(session)
        assert await statuses("pending") == []
        assert await statuses("expired") == ["a@example.com", "b@example.com"]
        assert (
            await owner.get(team.url("/invitations"), params={"status": "x"})
        ).status_code == 422

    @pytest.mark.parametrize(
        ("actor", "role", "code"),
        [
            (MemberRole.owner, "owner", "cannot_grant_owner"),
            (MemberRole.admin, "owner", "cannot_grant_owner"),
        ],
    )
    async def test_role_rules(
        self, team: Team, session: AsyncSession, actor: MemberRole, role: str, code: str
    ) -> None:
        response = await team.clients[actor].post(
            team.url("/invitations"), json={"email": "boss@example.com", "role": role}
        )
        problem(response, 403, code)
        assert await session.scalar(select(func.count()).select_from(Invitation)) == 0

    async def test_admin_may_invite_an_admin(self, team: Team) -> None:
        response = await team.clients[MemberRole.admin].post(
            team.url("/invitations"), json={"email": "peer@example.com", "role": "admin"}
        )
        assert response.status_code == 201
        assert response.json()["role"] == "admin"

    async def test_editor_may_not_invite(self, team: Team) -> None:
        response = await team.clients[MemberRole.editor].post(
            team.url("/invitations"), json={"email": "x@example.com"}
        )
        problem(response, 403, "permission_denied")

    @pytest.mark.parametrize(
        "body",
        [
            {"email": "not-an-email"},
            {"email": "x@example.com", "role": "superuser"},
            {"email": "x@example.com", "organization_id": str(uuid.uuid4())},
            {"email": ("a" * 250) + "@example.com"},
        ],
    )
    async def test_invalid_bodies_answer_422(self, team: Team, body: dict[str, Any]) -> None:
        response = await team.clients[MemberRole.owner].post(team.url("/invitations"), json=body)
        assert response.status_code == 422

    async def test_same_address_twice_answers_invitation_exists(self, team: Team) -> None:
        owner = team.clients[MemberRole.owner]
        first = await owner.post(team.url("/invitations"), json={"email": "twice@example.com"})
        second = await owner.post(team.url("/invitations"), json={"email": "TWICE@example.com"})
        body = problem(second, 409, "invitation_exists")
        assert body["invitation_id"] == first.json()["id"]

    async def test_a_member_answers_already_member(self, team: Team) -> None:
        response = await team.clients[MemberRole.owner].post(
            team.url("/invitations"), json={"email": team.users[MemberRole.agent].email}
        )
        problem(response, 409, "already_member")

    async def test_resend_issues_a_new_link(self, team: Team, session: AsyncSession) -> None:
        owner = team.clients[MemberRole.owner]
        created = (
            await owner.post(team.url("/invitations"), json={"email": "again@example.com"})
        ).json()
        old_token = await _invitation_token(session, "again@example.com")

        resent = await owner.post(team.url(f"/invitations/{created['id']}/resend"))

        assert resent.status_code == 200
        new_token = await _invitation_token(session, "again@example.com")
        assert new_token != old_token
        problem(await owner.get(f"{API}/invitations/{old_token}"), 404, "invitation_not_found")
        assert (await owner.get(f"{API}/invitations/{new_token}")).json()["status"] == "pending"
        assert "invitation.resent" in await audit_actions(session, team.org)

    async def test_revoked_link_says_so(self, team: Team, session: AsyncSession) -> None:
        owner = team.clients[MemberRole.owner]
        created = (
            await owner.post(team.url("/invitations"), json={"email": "gone@example.com"})
        ).json()
        token = await _invitation_token(session, "gone@example.com")

        assert (await owner.delete(team.url(f"/invitations/{created['id']}"))).status_code == 204

        assert (await team.anonymous.get(f"{API}/invitations/{token}")).json()[
            "status"
        ] == "revoked"
        problem(
            await owner.post(team.url(f"/invitations/{created['id']}/resend")),
            410,
            "invitation_revoked",
        )
        assert "invitation.revoked" in await audit_actions(session, team.org)


class TestAcceptInvitation:
    async def _invite(self, team: Team, session: AsyncSession, address: str) -> str:
        response = await team.clients[MemberRole.owner].post(
            team.url("/invitations"), json={"email": address, "role": "agent"}
        )
        assert response.status_code == 201, response.text
        return await _invitation_token(session, address)

    async def _client(
        self, session: AsyncSession, new_client: NewClient, address: str, verified: bool = True
    ) -> tuple[User, httpx.AsyncClient]:
        user = await create_user(session, email=address, verified=verified)
        return user, await signed_in(session, new_client, user)

    async def test_unknown_token(
        self, team: Team, session: AsyncSession, new_client: NewClient
    ) -> None:
        _, client = await self._client(session, new_client, "u@example.com")
        problem(await client.post(f"{API}/invitations/nope/accept"), 404, "invitation_not_found")
        problem(await client.get(f"{API}/invitations/nope"), 404, "invitation_not_found")

    async def test_needs_sign_in(self, team: Team, session: AsyncSession) -> None:
        token = await self._invite(team, session, "anon@example.com")
        response = await team.anonymous.post(f"{API}/invitations/{token}/accept")
        problem(response, 401, "not_authenticated")

    async def test_expired(self, team: Team, session: AsyncSession, new_client: NewClient) -> None:
        token = await self._invite(team, session, "late@example.com")
        _, client = await self._client(session, new_client, "late@example.com")
        await _expire_invitations(session)
        assert (await client.get(f"{API}/invitations/{token}")).json()["status"] == "expired"
        problem(await client.post(f"{API}/invitations/{token}/accept"), 410, "invitation_expired")

    async def test_revoked(self, team: Team, session: AsyncSession, new_client: NewClient) -> None:
        token = await self._invite(team, session, "rev@example.com")
        listed = (await team.clients[MemberRole.owner].get(team.url("/invitations"))).json()
        await team.clients[MemberRole.owner].delete(
            team.url(f"/invitations/{listed['items'][0]['id']}")
        )
        _, client = await self._client(session, new_client, "rev@example.com")
        problem(await client.post(f"{API}/invitations/{token}/accept"), 410, "invitation_revoked")

    async def test_already_accepted(
        self, team: Team, session: AsyncSession, new_client: NewClient
    ) -> None:
        token = await self._invite(team, session, "twice@example.com")
        _, client = await self._client(session, new_client, "twice@example.com")
        assert (await client.post(f"{API}/invitations/{token}/accept")).status_code == 200
        problem(
            await client.post(f"{API}/invitations/{token}/accept"),
            409,
            "invitation_already_accepted",
        )

    async def test_email_mismatch(
        self, team: Team, session: AsyncSession, new_client: NewClient
    ) -> None:
        token = await self._invite(team, session, "right@example.com")
        wrong, client = await self._client(session, new_client, "wrong@example.com")
        problem(
            await client.post(f"{API}/invitations/{token}/accept"), 403, "invitation_email_mismatch"
        )
        assert await role_of(session, team.org, wrong) is None

    async def test_email_not_verified(
        self, team: Team, session: AsyncSession, new_client: NewClient
    ) -> None:
        token = await self._invite(team, session, "unverified@example.com")
        user, client = await self._client(
            session, new_client, "unverified@example.com", verified=False
        )
        problem(await client.post(f"{API}/invitations/{token}/accept"), 403, "email_not_verified")
        assert await role_of(session, team.org, user) is None

    async def test_already_member(
        self, team: Team, session: AsyncSession, new_client: NewClient
    ) -> None:
        token = await self._invite(team, session, "joined@example.com")
        user, client = await self._client(session, new_client, "joined@example.com")
        await add_member(session, team.org, user, MemberRole.member)
        problem(await client.post(f"{API}/invitations/{token}/accept"), 409, "already_member")
        assert await role_of(session, team.org, user) == MemberRole.member
