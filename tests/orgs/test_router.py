"""The organizations API over HTTP: organizations, modules and the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.factories import create_organization, create_user, sign_in
from tests.orgs.conftest import NewClient, Team, audit_actions, role_of
from tests.orgs.helpers import API, error_fields, fresh_org, problem, signed_in
from townsquare.config import Settings
from townsquare.db import TransactionalRoute
from townsquare.main import create_app
from townsquare.orgs.context import OrgContext
from townsquare.orgs.deps import org_guard
from townsquare.orgs.enums import MemberRole, Module, Permission
from townsquare.orgs.models import Invitation, Membership, Organization


class TestCreateOrganization:
    async def test_creator_becomes_owner(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        user = await create_user(session)
        client = await signed_in(session, new_client, user)

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
        client = await signed_in(session, new_client, user)

        response = await client.post(f"{API}/orgs", json=body)

        assert field in error_fields(response)
        assert await session.scalar(select(func.count()).select_from(Organization)) == 0

    async def test_taken_slug_answers_409_with_a_suggestion(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        await create_organization(session, slug="bakers")
        user = await create_user(session)
        client = await signed_in(session, new_client, user)

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
        fresh = await fresh_org(session, team.org)
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
        assert await fresh_org(session, team.org) is None
        for model in (Membership, Invitation):
            count = await session.scalar(
                select(func.count()).select_from(model).where(model.organization_id == team.org.id)
            )
            assert count == 0
        assert await role_of(session, team.other_org, team.outsider) == MemberRole.owner
        problem(await owner.get(team.url()), 404, "organization_not_found")

    async def test_admin_cannot(self, team: Team, session: AsyncSession) -> None:
        problem(await team.clients[MemberRole.admin].delete(team.url()), 403, "permission_denied")
        assert await fresh_org(session, team.org) is not None


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
