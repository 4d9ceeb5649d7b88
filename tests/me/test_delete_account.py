"""`DELETE /auth/me`: the account is anonymized, its traces in organizations stay with a
"Deleted user", and the last owner of an organization is refused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import login, outbox_bodies, register
from tests.events.feed_helpers import make_event, make_shift, sign_up
from tests.factories import (
    DEFAULT_PASSWORD,
    add_member,
    create_article,
    create_organization,
    create_user,
    sign_in,
)
from tests.orgs.conftest import NewClient
from tests.support.conftest import make_desk
from townsquare.auth.models import User, UserSession, UserToken
from townsquare.config import Settings
from townsquare.db import Database, transaction
from townsquare.email.models import OutboxEmail
from townsquare.events.enums import SignupStatus
from townsquare.kit import clock
from townsquare.main import create_app
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import AuditLogEntry, Membership

API = "/api/v1"
ME = f"{API}/auth/me"


async def _delete(client: httpx.AsyncClient, password: str = DEFAULT_PASSWORD) -> httpx.Response:
    return await client.request("DELETE", ME, json={"password": password})


async def _count(session: AsyncSession, model: type, *where: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


class TestDeleteAccount:
    async def test_removes_what_says_who_they_were(
        self, session: AsyncSession, client: httpx.AsyncClient, new_client: NewClient
    ) -> None:
        email = f"leaving-{uuid.uuid4().hex[:8]}@example.org"
        user = await create_user(session, email=email, display_name="Lea Ving")
        user.avatar_url = "https://cdn.example.com/lea.png"
        org = await create_organization(session, name="Acme")
        await add_member(session, org, user, MemberRole.editor)
        await sign_in(session, client, user)
        phone = await new_client()
        await sign_in(session, phone, user)
        await client.post(f"{API}/auth/request-password-reset", json={"email": email})
        assert await outbox_bodies(session, email)

        deleted = await _delete(client)

        assert deleted.status_code == 204, deleted.text
        assert "townsquare_session=" in deleted.headers.get("set-cookie", "")
        assert (await client.get(ME)).status_code == 401
        assert (await phone.get(ME)).status_code == 401
        assert (await login(await new_client(), email, DEFAULT_PASSWORD)).status_code == 401
        await session.refresh(user)
        assert user.email == f"deleted-{user.id.hex}@deleted.invalid"
        assert user.display_name == "Deleted user"
        assert user.avatar_url is None
        assert user.is_active is False
        assert user.email_verified_at is None
        assert await _count(session, UserSession, UserSession.user_id == user.id) == 0
        assert await _count(session, UserToken, UserToken.user_id == user.id) == 0
        assert await _count(session, Membership, Membership.user_id == user.id) == 0
        assert await _count(session, OutboxEmail, OutboxEmail.to_address == email) == 0

    async def test_traces_stay_with_a_deleted_user(
        self, session: AsyncSession, new_client: NewClient
    ) -> None:
        desk = await make_desk(session, new_client)
        agent = desk.users["agent"]
        conversation = await desk.open("customer", subject="Where is my order?")
        await desk.send("agent", conversation["id"], "It ships today.")
        article = await create_article(session, desk.org, author=agent, title="Shipping news")

        assert (await _delete(desk.clients["agent"])).status_code == 204
        assert (await _delete(desk.clients["customer"])).status_code == 204

        owner = desk.clients["owner"]
        messages = (await desk.messages("owner", conversation["id"]))["items"]
        senders = {m["body"]: m["sender"] for m in messages if m["type"] == "text"}
        assert senders["It ships today."]["display_name"] == "Deleted user"
        assert senders["Hello"]["display_name"] == "Deleted user"
        shown = (await owner.get(desk.url(f"/articles/{article.id}"))).json()
        assert shown["author"] == {"id": str(agent.id), "display_name": "Deleted user"}
        log = (await owner.get(desk.url("/audit-log"))).json()["items"]
        left = [e for e in log if e["action"] == "member.account_deleted"]
        assert [e["actor"] for e in left] == [{"id": str(agent.id), "display_name": "Deleted user"}]
        assert left[0]["data"] == {"user_id": str(agent.id), "role": "agent"}
        members = (await owner.get(desk.url("/members"), params={"per_page": 100})).json()
        assert str(agent.id) not in {m["user_id"] for m in members["items"]}

    async def test_the_address_is_free_again(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        email = f"again-{uuid.uuid4().hex[:8]}@example.org"
        user = await create_user(session, email=email)
        await sign_in(session, client, user)
        assert (await _delete(client)).status_code == 204
        assert (await register(client, email=email)).status_code == 202
        templates = await session.scalars(
            select(OutboxEmail.template).where(OutboxEmail.to_address == email)
        )
        assert list(templates) == ["verify_email"]
        # The anonymous stand-in's address can never be registered.
        taken = await register(client, email=f"deleted-{user.id.hex}@deleted.invalid")
        assert taken.status_code == 422

    async def test_wrong_password_changes_nothing(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        refused = await _delete(client, "not-the-password-at-all")
        assert refused.status_code == 400
        assert refused.json()["code"] == "invalid_current_password"
        assert (await client.get(ME)).json()["email"] == user.email

    async def test_needs_sign_in_and_the_password(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        anonymous = await _delete(client)
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "not_authenticated"
        user = await create_user(session)
        await sign_in(session, client, user)
        assert (await client.request("DELETE", ME)).status_code == 422
        assert (await client.get(ME)).status_code == 200


class TestShifts:
    async def test_upcoming_places_go_to_the_waiting_list(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        waiting = await create_user(session, display_name="Wai Ting")
        org = await create_organization(session, owner=await create_user(session))
        for person in (user, waiting):
            await add_member(session, org, person, MemberRole.member)
        event = await make_event(session, org, starts_at=clock.now() - timedelta(days=1), days=5)
        past = await make_shift(session, event, starts_at=clock.now() - timedelta(hours=6))
        full = await make_shift(
            session, event, starts_at=clock.now() + timedelta(days=1), capacity=1
        )
        worked = await sign_up(session, past, user)
        mine = await sign_up(session, full, user)
        queued = await sign_up(session, full, waiting, status=SignupStatus.waitlisted)
        await sign_in(session, client, user)
        token = (await client.post(f"{API}/me/calendar-token")).json()["token"]

        assert (await _delete(client)).status_code == 204

        for row in (worked, mine, queued, full):
            await session.refresh(row)
        assert worked.status == SignupStatus.confirmed
        assert mine.status == SignupStatus.cancelled
        assert queued.status == SignupStatus.confirmed
        assert full.confirmed_count == 1
        feed = await client.get(f"{API}/me/shifts.ics", params={"token": token})
        assert feed.status_code == 404


class TestLastOwner:
    async def test_refused_naming_the_organizations(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        alone = await create_organization(session, owner=user, name="Solo Club")
        also_alone = await create_organization(session, owner=user, name="Another Club")
        shared = await create_organization(session, owner=user, name="Shared Club")
        await add_member(session, shared, await create_user(session), MemberRole.owner)
        await sign_in(session, client, user)

        refused = await _delete(client)

        assert refused.status_code == 409, refused.text
        body = refused.json()
        assert body["code"] == "last_owner"
        assert "Another Club, Solo Club" in body["detail"]
        assert body["organizations"] == [
            {"id": str(o.id), "slug": o.slug, "name": o.name} for o in (also_alone, alone)
        ]
        assert await _count(session, Membership, Membership.user_id == user.id) == 3
        assert (await client.get(ME)).status_code == 200

    async def test_allowed_once_another_owner_exists(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        org = await create_organization(session, owner=user, name="Hand Over")
        heir = await create_user(session)
        await add_member(session, org, heir, MemberRole.owner)
        await sign_in(session, client, user)
        assert (await _delete(client)).status_code == 204
        owners = await session.scalars(
            select(Membership.user_id).where(Membership.organization_id == org.id)
        )
        assert list(owners) == [heir.id]


@asynccontextmanager
async def _clients(
    database: Database, settings: Settings, count: int
) -> AsyncIterator[list[httpx.AsyncClient]]:
    # Many rounds from one address: the per-IP rate limit is not what is tested here.
    app = create_app(settings.model_copy(update={"RATE_LIMIT_ENABLED": False}), database=database)
    async with LifespanManager(app), AsyncExitStack() as stack:
        clients = []
        for n in range(count):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 52000 + n))
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://testserver")
                )
            )
        yield clients


class TestConcurrentDeletions:
    async def test_two_last_owners_at_once_keep_one(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with _clients(committed_db, settings, 2) as clients:
            for _ in range(5):
                async with transaction(committed_db) as s:
                    ann, bob = await create_user(s), await create_user(s)
                    org = await create_organization(s, owner=ann)
                    await add_member(s, org, bob, MemberRole.owner)
                    await sign_in(s, clients[0], ann)
                    await sign_in(s, clients[1], bob)

                answers = await asyncio.gather(*(_delete(c) for c in clients))

                assert sorted(a.status_code for a in answers) == [204, 409]
                async with transaction(committed_db, write=False) as s:
                    owners = await _count(
                        s,
                        Membership,
                        Membership.organization_id == org.id,
                        Membership.role == MemberRole.owner,
                    )
                assert owners == 1

    async def test_the_same_account_twice_deletes_once(
        self, committed_db: Database, settings: Settings
    ) -> None:
        async with _clients(committed_db, settings, 2) as clients:
            async with transaction(committed_db) as s:
                user = await create_user(s)
                org = await create_organization(s, owner=await create_user(s))
                await add_member(s, org, user, MemberRole.member)
                for c in clients:
                    await sign_in(s, c, user)

            answers = await asyncio.gather(*(_delete(c) for c in clients))

            assert sorted(a.status_code for a in answers) == [204, 401]
            async with transaction(committed_db, write=False) as s:
                entries = await _count(
                    s,
                    AuditLogEntry,
                    AuditLogEntry.organization_id == org.id,
                    AuditLogEntry.action == "member.account_deleted",
                )
                stored = await s.get_one(User, user.id)
            assert entries == 1
            assert stored.display_name == "Deleted user"
