"""The organizations API over HTTP: what members, outsiders and invitees see."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import IS_POSTGRES, RolledBackDatabase, _client_for, make_settings
from tests.email.servers import SmtpServer
from tests.factories import add_member, create_organization, create_user, sign_in
from tests.orgs.conftest import Team, audit_actions, membership_of, role_of
from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db import Database, TransactionalRoute, transaction
from townsquare.email.delivery import deliver_batch
from townsquare.email.models import OutboxEmail
from townsquare.kit import clock
from townsquare.main import create_app
from townsquare.orgs.deps import OrgContext, org_guard
from townsquare.orgs.enums import MemberRole, Module, Permission
from townsquare.orgs.models import Invitation, Membership, Organization

API = "/api/v1"
NewClient = Callable[[], Awaitable[httpx.AsyncClient]]


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def error_fields(response: httpx.Response) -> set[str]:
    body = problem(response, 422, "validation_error")
    return {error["field"] for error in body["errors"]}


async def _signed_in(session: AsyncSession, new_client: NewClient, user: User) -> httpx.AsyncClient:
    client = await new_client()
    await sign_in(session, client, user)
    return client


async def _fresh_org(session: AsyncSession, org: Organization) -> Organization | None:
    return await session.scalar(
        select(Organization)
        .where(Organization.id == org.id)
        .execution_options(populate_existing=True)
    )


# --- organizations ----------------------------------------------------------------------


class TestCreateOrganization:
    async def test_creator_becomes_owner(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        user = await create_user(session)
        client = await _signed_in(session, new_client, user)

        response = await client.post(
            f"{API}/orgs",
            json={
                "name": "  Riverside Garden  ",
                "avatar_url": "https://cdn.example.com/r.png",
                "timezone": "Europe/Berlin",
            },
        )

        assert response.status_code == 201, response.text
        body = response.json()
        assert body["name"] == "Riverside Garden"
        assert body["slug"] == "riverside-garden"
        assert body["timezone"] == "Europe/Berlin"
        assert body["avatar_url"] == "https://cdn.example.com/r.png"
        assert body["role"] == "owner"
        assert body["modules"] == ["cms", "events", "support"]
        mine = (await client.get(f"{API}/orgs")).json()
        assert mine["total"] == 1
        assert mine["items"][0] | {"id": None} == {
            "id": None,
            "name": "Riverside Garden",
            "slug": "riverside-garden",
            "avatar_url": "https://cdn.example.com/r.png",
            "role": "owner",
        }

    async def test_default_modules_and_timezone_come_from_settings(
        self, db: RolledBackDatabase, session: AsyncSession
    ) -> None:
        settings = make_settings(DEFAULT_MODULES="events,support", DEFAULT_TIMEZONE="Asia/Tokyo")
        user = await create_user(session)
        async for client in _client_for(create_app(settings, database=db)):
            await sign_in(session, client, user)
            response = await client.post(f"{API}/orgs", json={"name": "Tokyo Helpers"})
            assert response.status_code == 201, response.text
            assert response.json()["modules"] == ["events", "support"]
            assert response.json()["timezone"] == "Asia/Tokyo"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": ""}, "name"),
            ({"name": "   "}, "name"),
            ({"name": "x" * 101}, "name"),
            ({"name": "Nul\x00byte"}, "name"),
            ({"name": "Ok", "slug": "Not A Slug"}, "slug"),
            ({"name": "Ok", "slug": "-leading"}, "slug"),
            ({"name": "Ok", "slug": "a" * 65}, "slug"),
            ({"name": "Ok", "avatar_url": "javascript:alert(1)"}, "avatar_url"),
            ({"name": "Ok", "avatar_url": "https://x.example/\x00.png"}, "avatar_url"),
            ({"name": "Ok", "avatar_url": "https://x.example/" + "a" * 2048}, "avatar_url"),
            ({"name": "Ok", "timezone": "Mars/Olympus_Mons"}, "timezone"),
            ({"name": "Ok", "timezone": "../../etc/passwd"}, "timezone"),
            ({"name": "Ok", "timezone": "x" * 65}, "timezone"),
            ({"name": "Ok", "organization_id": str(uuid.uuid4())}, "organization_id"),
            ({"name": "Ok", "role": "owner"}, "role"),
        ],
    )
    async def test_invalid_fields_answer_422(
        self, session: AsyncSession, new_client: NewClient, body: dict[str, Any], field: str
    ) -> None:
        user = await create_user(session)
        client = await _signed_in(session, new_client, user)

        response = await client.post(f"{API}/orgs", json=body)

        assert field in error_fields(response)
        assert await session.scalar(select(func.count()).select_from(Organization)) == 0

    async def test_taken_slug_answers_409_with_a_suggestion(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        await create_organization(session, slug="bakers")
        user = await create_user(session)
        client = await _signed_in(session, new_client, user)

        response = await client.post(f"{API}/orgs", json={"name": "Bakers", "slug": "bakers"})

        body = problem(response, 409, "slug_taken")
        assert body["suggestion"] == "bakers-2"
        retry = await client.post(f"{API}/orgs", json={"name": "Bakers", "slug": "bakers-2"})
        assert retry.status_code == 201

    async def test_anonymous_is_refused(self, client: httpx.AsyncClient) -> None:
        problem(await client.post(f"{API}/orgs", json={"name": "X"}), 401, "not_authenticated")


class TestGetOrganization:
    async def test_member_sees_it_with_their_role(self, team: Team) -> None:
        response = await team.clients[MemberRole.agent].get(team.url())
        assert response.status_code == 200
        assert response.json()["slug"] == team.org.slug
        assert response.json()["role"] == "agent"

    async def test_outsider_and_unknown_slug_look_the_same(self, team: Team) -> None:
        hidden = await team.outsider_client.get(team.url())
        unknown = await team.outsider_client.get(f"{API}/orgs/no-such-org")
        problem(hidden, 404, "organization_not_found")
        problem(unknown, 404, "organization_not_found")
        assert hidden.json()["detail"] == unknown.json()["detail"]


class TestUpdateOrganization:
    async def test_admin_renames_and_it_is_audited(self, team: Team, session: AsyncSession) -> None:
        response = await team.clients[MemberRole.admin].patch(
            team.url(), json={"name": "Acme Two", "timezone": "America/Chicago"}
        )

        assert response.status_code == 200, response.text
        assert response.json()["name"] == "Acme Two"
        assert response.json()["timezone"] == "America/Chicago"
        assert "organization.updated" in await audit_actions(session, team.org)

    async def test_avatar_can_be_cleared(self, team: Team, session: AsyncSession) -> None:
        owner = team.clients[MemberRole.owner]
        await owner.patch(team.url(), json={"avatar_url": "https://img.example.com/a.png"})
        response = await owner.patch(team.url(), json={"avatar_url": None})
        assert response.status_code == 200
        assert response.json()["avatar_url"] is None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": None}, "name"),
            ({"name": "y" * 101}, "name"),
            ({"slug": "UPPER"}, "slug"),
            ({"slug": None}, "slug"),
            ({"timezone": "Nowhere/City"}, "timezone"),
            ({"timezone": None}, "timezone"),
            ({"avatar_url": "ftp://x.example/a.png"}, "avatar_url"),
            ({"id": str(uuid.uuid4())}, "id"),
        ],
    )
    async def test_invalid_fields_answer_422_and_change_nothing(
        self, team: Team, session: AsyncSession, body: dict[str, Any], field: str
    ) -> None:
        response = await team.clients[MemberRole.owner].patch(team.url(), json=body)

        assert field in error_fields(response)
        fresh = await _fresh_org(session, team.org)
        assert fresh is not None
        assert (fresh.name, fresh.slug, fresh.timezone) == ("Acme", team.org.slug, "UTC")

    async def test_slug_of_another_org_answers_409(self, team: Team) -> None:
        response = await team.clients[MemberRole.owner].patch(
            team.url(), json={"slug": team.other_org.slug}
        )
        body = problem(response, 409, "slug_taken")
        assert body["suggestion"] == f"{team.other_org.slug}-2"

    async def test_slug_change_moves_the_org(self, team: Team) -> None:
        owner = team.clients[MemberRole.owner]
        response = await owner.patch(team.url(), json={"slug": "acme-new"})
        assert response.status_code == 200
        assert (await owner.get(f"{API}/orgs/acme-new")).status_code == 200
        problem(await owner.get(team.url()), 404, "organization_not_found")


class TestDeleteOrganization:
    async def test_owner_deletes_everything_of_the_org(
        self, team: Team, session: AsyncSession
    ) -> None:
        owner = team.clients[MemberRole.owner]
        await owner.post(team.url("/invitations"), json={"email": "late@example.com"})

        response = await owner.delete(team.url())

        assert response.status_code == 204
        assert await _fresh_org(session, team.org) is None
        for model in (Membership, Invitation):
            count = await session.scalar(
                select(func.count()).select_from(model).where(model.organization_id == team.org.id)
            )
            assert count == 0
        assert await role_of(session, team.other_org, team.outsider) == MemberRole.owner
        problem(await owner.get(team.url()), 404, "organization_not_found")

    async def test_admin_cannot(self, team: Team, session: AsyncSession) -> None:
        problem(await team.clients[MemberRole.admin].delete(team.url()), 403, "permission_denied")
        assert await _fresh_org(session, team.org) is not None


# --- members ----------------------------------------------------------------------------


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


# --- invitations ------------------------------------------------------------------------


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
        client = await _signed_in(session, new_client, newcomer)
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
        return user, await _signed_in(session, new_client, user)

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


# --- modules and audit log --------------------------------------------------------------


def _app_with_a_cms_route(db: RolledBackDatabase, settings: Settings) -> FastAPI:
    """The app plus one route guarded with `module=Module.cms`, as the CMS routes are."""
    app = create_app(settings, database=db)
    probe = APIRouter(prefix=f"{API}/probe", route_class=TransactionalRoute)

    @probe.get("/orgs/{org}/cms-thing")
    async def cms_thing(
        ctx: Annotated[OrgContext, org_guard(Permission.cms_write, module=Module.cms)],
    ) -> dict[str, str]:
        return {"org": ctx.org.slug}

    app.include_router(probe)
    return app


class TestModules:
    async def test_owner_switches_modules(self, team: Team, session: AsyncSession) -> None:
        owner = team.clients[MemberRole.owner]
        assert (await owner.get(team.url("/modules"))).json() == {
            "modules": ["cms", "events", "support"]
        }

        response = await owner.put(team.url("/modules"), json={"modules": ["support", "cms"]})

        assert response.status_code == 200
        assert response.json() == {"modules": ["cms", "support"]}
        assert (await owner.get(team.url())).json()["modules"] == ["cms", "support"]
        log = (await owner.get(team.url("/audit-log"), params={"action": "modules.updated"})).json()
        assert log["items"][0]["data"] == {"enabled": [], "disabled": ["events"]}

    async def test_unknown_module_answers_422(self, team: Team) -> None:
        response = await team.clients[MemberRole.admin].put(
            team.url("/modules"), json={"modules": ["cms", "casino"]}
        )
        assert response.status_code == 422

    async def test_editor_may_not(self, team: Team) -> None:
        problem(
            await team.clients[MemberRole.editor].get(team.url("/modules")),
            403,
            "permission_denied",
        )

    async def test_a_module_that_is_off_answers_module_disabled(
        self, db: RolledBackDatabase, settings: Settings, session: AsyncSession, team: Team
    ) -> None:
        app = _app_with_a_cms_route(db, settings)
        owner = team.users[MemberRole.owner]
        async for client in _client_for(app):
            await sign_in(session, client, owner)
            url = f"{API}/probe/orgs/{team.org.slug}/cms-thing"
            assert (await client.get(url)).json() == {"org": team.org.slug}
            put = await client.put(team.url("/modules"), json={"modules": ["events"]})
            assert put.status_code == 200

            problem(await client.get(url), 403, "module_disabled")

            await client.put(team.url("/modules"), json={"modules": ["events", "cms"]})
            assert (await client.get(url)).status_code == 200


class TestAuditLog:
    async def test_records_each_kind_of_change(self, team: Team, session: AsyncSession) -> None:
        owner = team.clients[MemberRole.owner]
        await owner.patch(team.url(), json={"name": "Acme Co"})
        await owner.patch(
            team.url(f"/members/{team.members[MemberRole.member].id}"), json={"role": "agent"}
        )
        await owner.delete(team.url(f"/members/{team.members[MemberRole.agent].id}"))
        await team.clients[MemberRole.editor].post(team.url("/leave"))
        invited = (
            await owner.post(team.url("/invitations"), json={"email": "i@example.com"})
        ).json()
        await owner.post(team.url(f"/invitations/{invited['id']}/resend"))
        await owner.delete(team.url(f"/invitations/{invited['id']}"))
        await owner.put(team.url("/modules"), json={"modules": ["cms"]})
        await owner.post(
            team.url("/transfer-ownership"),
            json={"member_id": str(team.members[MemberRole.admin].id)},
        )

        log = (await owner.get(team.url("/audit-log"), params={"per_page": 100})).json()

        assert {entry["action"] for entry in log["items"]} == {
            "organization.updated",
            "member.role_changed",
            "member.removed",
            "member.left",
            "invitation.created",
            "invitation.resent",
            "invitation.revoked",
            "modules.updated",
            "organization.ownership_transferred",
        }
        assert log["total"] == 9
        paged = (await owner.get(team.url("/audit-log"), params={"per_page": 4, "page": 3})).json()
        assert (paged["total"], len(paged["items"])) == (9, 1)

    async def test_failed_changes_leave_no_entry(self, team: Team, session: AsyncSession) -> None:
        await team.clients[MemberRole.owner].post(team.url("/leave"))
        await team.clients[MemberRole.admin].patch(
            team.url(f"/members/{team.members[MemberRole.owner].id}"), json={"role": "member"}
        )
        assert await audit_actions(session, team.org) == []

    @pytest.mark.parametrize("role", [MemberRole.editor, MemberRole.agent, MemberRole.member])
    async def test_only_owners_and_admins_read_it(self, team: Team, role: MemberRole) -> None:
        problem(await team.clients[role].get(team.url("/audit-log")), 403, "permission_denied")


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


# --- races (real commits) ---------------------------------------------------------------


@asynccontextmanager
async def _clients(
    database: Database, settings: Settings, count: int
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` clients over one app whose requests really commit."""
    app = create_app(settings, database=database)
    async with LifespanManager(app), AsyncExitStack() as stack:
        clients = []
        for n in range(count):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 51000 + n))
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://testserver")
                )
            )
        yield clients


async def _owner_count(database: Database, org_id: uuid.UUID) -> int:
    async with transaction(database, write=False) as s:
        count = await s.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.organization_id == org_id, Membership.role == MemberRole.owner)
        )
    return int(count or 0)


REPEATS = 50


class TestLastOwnerUnderConcurrency:
    """Two owners demoting each other, or both leaving, at the same moment: one succeeds,
    the other is refused, and the organization keeps an owner. Repeated."""

    async def _two_owners(
        self, database: Database, a: User, b: User
    ) -> tuple[Organization, Membership, Membership]:
        async with transaction(database) as s:
            org = await create_organization(s, owner=a)
            member_b = await add_member(s, org, b, MemberRole.owner)
            member_a = await membership_of(s, org, a)
        return org, member_a, member_b

    async def _users(
        self, database: Database, clients: list[httpx.AsyncClient]
    ) -> tuple[User, User]:
        async with transaction(database) as s:
            a = await create_user(s, display_name="Ann")
            b = await create_user(s, display_name="Bob")
            await sign_in(s, clients[0], a)
            await sign_in(s, clients[1], b)
        return a, b

    async def test_mutual_demotions(self, committed_db: Database, settings: Settings) -> None:
        async with _clients(committed_db, settings, 2) as (client_a, client_b):
            a, b = await self._users(committed_db, [client_a, client_b])
            outcomes: set[tuple[int, ...]] = set()
            for _ in range(REPEATS):
                org, member_a, member_b = await self._two_owners(committed_db, a, b)
                first, second = await asyncio.gather(
                    client_a.patch(
                        f"{API}/orgs/{org.slug}/members/{member_b.id}", json={"role": "admin"}
                    ),
                    client_b.patch(
                        f"{API}/orgs/{org.slug}/members/{member_a.id}", json={"role": "admin"}
                    ),
                )
                statuses = tuple(sorted((first.status_code, second.status_code)))
                assert statuses == (200, 403), (first.text, second.text)
                assert await _owner_count(committed_db, org.id) == 1
                outcomes.add(statuses)
        assert outcomes == {(200, 403)}

    async def test_both_leave(self, committed_db: Database, settings: Settings) -> None:
        async with _clients(committed_db, settings, 2) as (client_a, client_b):
            a, b = await self._users(committed_db, [client_a, client_b])
            for _ in range(REPEATS):
                org, _, _ = await self._two_owners(committed_db, a, b)
                first, second = await asyncio.gather(
                    client_a.post(f"{API}/orgs/{org.slug}/leave"),
                    client_b.post(f"{API}/orgs/{org.slug}/leave"),
                )
                statuses = sorted((first.status_code, second.status_code))
                assert statuses == [204, 409], (first.text, second.text)
                refused = first if first.status_code == 409 else second
                assert refused.json()["code"] == "last_owner"
                assert await _owner_count(committed_db, org.id) == 1

    async def test_one_leaves_while_the_other_demotes_them(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with _clients(committed_db, settings, 2) as (client_a, client_b):
            a, b = await self._users(committed_db, [client_a, client_b])
            for _ in range(REPEATS):
                org, member_a, _ = await self._two_owners(committed_db, a, b)
                await asyncio.gather(
                    client_a.post(f"{API}/orgs/{org.slug}/leave"),
                    client_b.patch(
                        f"{API}/orgs/{org.slug}/members/{member_a.id}", json={"role": "admin"}
                    ),
                )
                assert await _owner_count(committed_db, org.id) >= 1


class TestSlugRace:
    async def test_fifty_creates_with_one_slug(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with _clients(committed_db, settings, 1) as (client,):
            async with transaction(committed_db) as s:
                user = await create_user(s)
                await sign_in(s, client, user)

            responses = await asyncio.gather(
                *(
                    client.post(f"{API}/orgs", json={"name": f"Race {n}", "slug": "race"})
                    for n in range(50)
                )
            )

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 49, [r.text for r in responses if r.status_code >= 500]
        for response in responses:
            if response.status_code == 409:
                assert response.json()["code"] == "slug_taken"
                assert response.json()["suggestion"] == "race-2"
        async with transaction(committed_db, write=False) as s:
            count = await s.scalar(select(func.count()).select_from(Organization))
        assert count == 1

    async def test_fifty_creates_with_one_name_get_distinct_slugs(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with _clients(committed_db, settings, 1) as (client,):
            async with transaction(committed_db) as s:
                user = await create_user(s)
                await sign_in(s, client, user)

            responses = await asyncio.gather(
                *(client.post(f"{API}/orgs", json={"name": "Same Name"}) for _ in range(50))
            )

        assert all(r.status_code in (201, 409) for r in responses), [
            r.text for r in responses if r.status_code not in (201, 409)
        ]
        created = [r.json()["slug"] for r in responses if r.status_code == 201]
        assert len(created) == len(set(created))
        assert "same-name" in created
        if not IS_POSTGRES:
            # Writes are serialized on SQLite: every request finds a free suffix.
            assert len(created) == 50
