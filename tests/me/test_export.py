"""`GET /me/export`: a JSON download of the caller's own data, and nothing else."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.events.feed_helpers import make_event, make_shift, sign_up
from tests.factories import (
    add_member,
    create_article,
    create_media,
    create_organization,
    create_user,
    sign_in,
)
from tests.orgs.conftest import NewClient
from tests.support.conftest import make_desk
from townsquare.auth.models import UserSession
from townsquare.kit import clock
from townsquare.orgs.enums import MemberRole

API = "/api/v1"
EXPORT = f"{API}/me/export"


class TestExport:
    async def test_a_download_of_ones_own_data(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        desk = await make_desk(session, new_client)
        me = desk.users["customer"]
        await add_member(session, desk.other_org, me, MemberRole.editor)
        article = await create_article(session, desk.other_org, author=me, title="My first post")
        picture = await create_media(session, desk.other_org, filename="holiday.png")
        picture.uploaded_by_id = me.id
        await create_media(session, desk.other_org, filename="not-mine.png")
        event = await make_event(session, desk.other_org, title="Street party")
        shift = await make_shift(session, event, starts_at=clock.now() + timedelta(days=1))
        signup = await sign_up(session, shift, me)
        mine = await desk.open("customer", subject="My order", body="Hello from me")
        await desk.send("agent", mine["id"], "We are on it")
        await desk.send("agent", mine["id"], "Note about this customer", internal=True)
        await desk.open("customer2", subject="Someone else's trouble", body="Private of two")
        owner = desk.clients["owner"]
        for address in (me.email, "stranger@example.org"):
            invited = await owner.post(
                desk.url("/invitations"), json={"email": address, "role": "member"}
            )
            assert invited.status_code == 201, invited.text

        response = await desk.clients["customer"].get(EXPORT)

        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["content-disposition"].startswith(
            'attachment; filename="townsquare-export-'
        )
        assert response.headers["cache-control"] == "no-store"
        data = response.json()
        assert data["format"] == "townsquare-export/1"
        assert data["profile"]["email"] == me.email
        assert data["profile"]["display_name"] == me.display_name
        assert [(m["organization"]["slug"], m["role"]) for m in data["memberships"]] == [
            (desk.other_org.slug, "editor")
        ]
        assert [s["current"] for s in data["sessions"]] == [True]
        assert [(a["id"], a["title"]) for a in data["articles"]] == [
            (str(article.id), "My first post")
        ]
        assert [c["subject"] for c in data["conversations"]] == ["My order"]
        assert [m["body"] for m in data["messages"]] == ["Hello from me"]
        assert [m["filename"] for m in data["media"]] == ["holiday.png"]
        assert [(s["id"], s["event_title"], s["status"]) for s in data["signups"]] == [
            (str(signup.id), "Street party", "confirmed")
        ]
        assert [(i["organization"]["slug"], i["status"]) for i in data["invitations"]] == [
            (desk.org.slug, "pending")
        ]
        invited_me = [e for e in data["audit_log"] if e["action"] == "invitation.created"]
        assert [e["data"]["email"] for e in invited_me] == [me.email]

        text = response.text
        hashes = await session.scalars(
            select(UserSession.token_hash).where(UserSession.user_id == me.id)
        )
        for secret in [me.password_hash, *hashes]:
            assert secret not in text
        for other_peoples in (
            "Note about this customer",
            "Someone else's trouble",
            "Private of two",
            "stranger@example.org",
            "not-mine.png",
            "storage_key",
        ):
            assert other_peoples not in text

    async def test_needs_sign_in(self, client: httpx.AsyncClient) -> None:
        response = await client.get(EXPORT)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"

    async def test_own_actions_without_other_peoples_addresses(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        me = await create_user(session)
        org = await create_organization(session, owner=me, name="Mine")
        await sign_in(session, client, me)
        invited = await client.post(
            f"{API}/orgs/{org.slug}/invitations",
            json={"email": "friend@example.org", "role": "editor"},
        )
        assert invited.status_code == 201

        response = await client.get(EXPORT)

        entries = [e for e in response.json()["audit_log"] if e["action"] == "invitation.created"]
        assert [(e["actor_id"], e["data"]) for e in entries] == [(str(me.id), {"role": "editor"})]
        assert "friend@example.org" not in response.text
