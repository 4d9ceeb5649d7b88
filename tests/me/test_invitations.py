"""`GET /me/invitations` and `POST /me/invitations/{id}/accept`."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import add_member, create_organization, create_user, sign_in
from tests.orgs.conftest import NewClient
from townsquare.auth.models import User
from townsquare.kit import clock
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Invitation, Membership, Organization

API = "/api/v1"
MINE = f"{API}/me/invitations"


async def _org_with_owner(
    session: AsyncSession, new_client: NewClient, name: str, owner_name: str
) -> tuple[Organization, httpx.AsyncClient]:
    owner = await create_user(session, display_name=owner_name)
    org = await create_organization(session, owner=owner, name=name)
    client = await new_client()
    await sign_in(session, client, owner)
    return org, client


async def _invite(
    client: httpx.AsyncClient, org: Organization, email: str, role: str = "member"
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/orgs/{org.slug}/invitations", json={"email": email, "role": role}
    )
    assert response.status_code == 201, response.text
    invited: dict[str, Any] = response.json()
    return invited


async def _me(session: AsyncSession, new_client: NewClient) -> tuple[User, httpx.AsyncClient]:
    user = await create_user(session, email=f"invitee-{uuid.uuid4().hex[:8]}@example.org")
    client = await new_client()
    await sign_in(session, client, user)
    return user, client


class TestListMyInvitations:
    async def test_pending_invitations_to_my_address_across_orgs(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        me, client = await _me(session, new_client)
        acme, acme_owner = await _org_with_owner(session, new_client, "Acme", "Olive Owner")
        zeta, zeta_owner = await _org_with_owner(session, new_client, "Zeta", "Zed Owner")
        first = await _invite(acme_owner, acme, me.email.upper(), "editor")
        clock.travel(timedelta(seconds=1))
        second = await _invite(zeta_owner, zeta, me.email, "admin")
        # Not listed: to someone else, revoked, expired, from an org I am already in.
        await _invite(acme_owner, acme, "someone-else@example.org")
        gone, gone_owner = await _org_with_owner(session, new_client, "Gone", "G")
        revoked = await _invite(gone_owner, gone, me.email)
        await gone_owner.delete(f"{API}/orgs/{gone.slug}/invitations/{revoked['id']}")
        old, old_owner = await _org_with_owner(session, new_client, "Old", "O")
        expired = await _invite(old_owner, old, me.email)
        row = await session.get_one(Invitation, uuid.UUID(expired["id"]))
        row.expires_at = clock.now() - timedelta(minutes=1)
        joined, joined_owner = await _org_with_owner(session, new_client, "Joined", "J")
        await _invite(joined_owner, joined, me.email)
        await add_member(session, joined, me, MemberRole.member)
        await session.flush()

        response = await client.get(MINE)

        assert response.status_code == 200, response.text
        page = response.json()
        assert (page["total"], page["page"]) == (2, 1)
        assert page["items"] == [
            {
                "id": second["id"],
                "organization": {
                    "id": str(zeta.id),
                    "slug": zeta.slug,
                    "name": "Zeta",
                    "avatar_url": None,
                },
                "role": "admin",
                "inviter_display_name": "Zed Owner",
                "created_at": page["items"][0]["created_at"],
                "expires_at": second["expires_at"],
            },
            {
                "id": first["id"],
                "organization": {
                    "id": str(acme.id),
                    "slug": acme.slug,
                    "name": "Acme",
                    "avatar_url": None,
                },
                "role": "editor",
                "inviter_display_name": "Olive Owner",
                "created_at": page["items"][1]["created_at"],
                "expires_at": first["expires_at"],
            },
        ]
        assert "token" not in response.text

    async def test_an_unverified_address_sees_none(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        user = await create_user(session, verified=False)
        client = await new_client()
        await sign_in(session, client, user)
        org, owner = await _org_with_owner(session, new_client, "Acme", "O")
        await _invite(owner, org, user.email)
        refused = await client.get(MINE)
        assert refused.status_code == 403
        assert refused.json()["code"] == "email_not_verified"

    async def test_needs_sign_in(self, client: httpx.AsyncClient) -> None:
        listed = await client.get(MINE)
        accepted = await client.post(f"{MINE}/{uuid.uuid4()}/accept")
        assert (listed.status_code, accepted.status_code) == (401, 401)
        assert accepted.json()["code"] == "not_authenticated"


class TestAcceptFromTheList:
    async def test_accepting_joins_the_org(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        me, client = await _me(session, new_client)
        org, owner = await _org_with_owner(session, new_client, "Acme", "O")
        invitation = await _invite(owner, org, me.email, "editor")

        accepted = await client.post(f"{MINE}/{invitation['id']}/accept")

        assert accepted.status_code == 200, accepted.text
        body = accepted.json()
        assert body["organization"] == {
            "id": str(org.id),
            "name": "Acme",
            "slug": org.slug,
            "avatar_url": None,
            "role": "editor",
        }
        membership = await session.scalar(
            select(Membership).where(
                Membership.organization_id == org.id, Membership.user_id == me.id
            )
        )
        assert membership is not None
        assert body["member_id"] == str(membership.id)
        assert (await client.get(MINE)).json()["items"] == []
        listed = await owner.get(f"{API}/orgs/{org.slug}/invitations")
        assert [i["status"] for i in listed.json()["items"]] == ["accepted"]
        again = await client.post(f"{MINE}/{invitation['id']}/accept")
        assert again.status_code == 409
        assert again.json()["code"] == "invitation_already_accepted"

    async def test_someone_elses_invitation_is_not_found(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        me, client = await _me(session, new_client)
        org, owner = await _org_with_owner(session, new_client, "Acme", "O")
        theirs = await _invite(owner, org, "someone-else@example.org")

        refused = await client.post(f"{MINE}/{theirs['id']}/accept")

        assert refused.status_code == 404
        assert refused.json()["code"] == "invitation_not_found"
        members = await session.scalars(
            select(Membership.user_id).where(Membership.organization_id == org.id)
        )
        assert me.id not in list(members)

    async def test_expired_and_revoked_are_gone(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        me, client = await _me(session, new_client)
        org, owner = await _org_with_owner(session, new_client, "Acme", "O")
        revoked = await _invite(owner, org, me.email)
        await owner.delete(f"{API}/orgs/{org.slug}/invitations/{revoked['id']}")
        other, other_owner = await _org_with_owner(session, new_client, "Other", "O")
        expiring = await _invite(other_owner, other, me.email)
        clock.travel(timedelta(days=8))
        await sign_in(session, client, me)

        gone = await client.post(f"{MINE}/{revoked['id']}/accept")
        late = await client.post(f"{MINE}/{expiring['id']}/accept")

        assert (gone.status_code, gone.json()["code"]) == (410, "invitation_revoked")
        assert (late.status_code, late.json()["code"]) == (410, "invitation_expired")

    async def test_an_unverified_account_cannot_accept(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        user = await create_user(session, verified=False)
        client = await new_client()
        await sign_in(session, client, user)
        org, owner = await _org_with_owner(session, new_client, "Acme", "O")
        invitation = await _invite(owner, org, user.email)
        refused = await client.post(f"{MINE}/{invitation['id']}/accept")
        assert refused.status_code == 403
        assert refused.json()["code"] == "email_not_verified"
