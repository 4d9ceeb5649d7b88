"""Changing one's email address: `POST /auth/me/email`, confirmed by the link sent to the
new address (`POST /auth/verify-email`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from types import ModuleType

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import API, link_token, login, outbox_bodies, unique_email
from tests.auth.test_timing import _medians
from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.factories import DEFAULT_PASSWORD, create_user, sign_in
from tests.orgs.conftest import NewClient
from townsquare.auth.models import User
from townsquare.db import Database, transaction
from townsquare.email.models import OutboxEmail
from townsquare.main import create_app

CHANGE = f"{API}/auth/me/email"
VERIFY = f"{API}/auth/verify-email"


async def _ask(
    client: httpx.AsyncClient, email: str, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    return await client.post(CHANGE, json={"email": email, "password": password})


async def _ask_fresh(client: httpx.AsyncClient) -> httpx.Response:
    return await _ask(client, unique_email("free"))


async def _link_sent_to(session: AsyncSession, address: str) -> str:
    bodies = await outbox_bodies(session, address)
    assert bodies, f"no email to {address}"
    return link_token(bodies[-1], "verify-email")


async def _templates_to(session: AsyncSession, address: str) -> list[str]:
    rows = await session.scalars(
        select(OutboxEmail.template)
        .where(OutboxEmail.to_address == address)
        .order_by(OutboxEmail.created_at, OutboxEmail.id)
    )
    return list(rows)


async def _fresh(session: AsyncSession, user: User) -> User:
    await session.refresh(user)
    return user


class TestChangeEmail:
    async def test_takes_effect_when_the_new_address_confirms(
        self, session: AsyncSession, client: httpx.AsyncClient, new_client: NewClient
    ) -> None:
        old, new = unique_email("old"), unique_email("new")
        user = await create_user(session, email=old, display_name="Ola")
        await sign_in(session, client, user)

        asked = await _ask(client, new.upper())

        assert asked.status_code == 202, asked.text
        assert (await _fresh(session, user)).email == old
        token = await _link_sent_to(session, new)
        assert await _templates_to(session, old) == []

        confirmed = await client.post(VERIFY, json={"token": token})

        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["email"] == new
        assert confirmed.json()["email_verified"] is True
        assert (await client.get(f"{API}/auth/me")).json()["email"] == new
        assert await _templates_to(session, old) == ["email_changed"]
        told = (await outbox_bodies(session, old))[-1]
        assert new in told
        anonymous = await new_client()
        assert (await login(anonymous, new, DEFAULT_PASSWORD)).status_code == 200
        assert (await login(anonymous, old, DEFAULT_PASSWORD)).status_code == 401
        # The link works once.
        again = await client.post(VERIFY, json={"token": token})
        assert again.status_code == 400
        assert again.json()["code"] == "invalid_token"

    async def test_an_unverified_account_can_fix_its_address(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session, verified=False)
        await sign_in(session, client, user)
        new = unique_email("typo-fixed")
        assert (await _ask(client, new)).status_code == 202
        confirmed = await client.post(VERIFY, json={"token": await _link_sent_to(session, new)})
        assert confirmed.status_code == 200
        assert (await _fresh(session, user)).email_verified_at is not None

    async def test_wrong_password_changes_nothing_and_sends_nothing(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        new = unique_email()
        refused = await _ask(client, new, password="not-the-password-at-all")
        assert refused.status_code == 400
        assert refused.json()["code"] == "invalid_current_password"
        assert await _templates_to(session, new) == []

    async def test_the_same_address_is_refused(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        refused = await _ask(client, user.email.upper())
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "email"
        assert refused.json()["errors"][0]["code"] == "email_unchanged"

    async def test_needs_sign_in_and_an_address(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        anonymous = await _ask(client, unique_email())
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "not_authenticated"
        user = await create_user(session)
        await sign_in(session, client, user)
        assert (await _ask(client, "not-an-address")).status_code == 422


class TestTakenAddress:
    async def test_answers_alike_and_leaves_the_owner_alone(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        owner = await create_user(session, display_name="Owen")
        user = await create_user(session)
        await sign_in(session, client, user)
        free_address = unique_email("free")
        free = await _ask(client, free_address)
        taken = await _ask(client, owner.email)

        assert (taken.status_code, taken.json()) == (free.status_code, free.json())
        assert (await _fresh(session, owner)).email == owner.email
        assert await _templates_to(session, owner.email) == ["email_change_taken"]
        note = (await outbox_bodies(session, owner.email))[0]
        assert "verify-email" not in note
        assert "Owen" in note
        # The earlier link died as it would for a free address, so it tells nothing either.
        stale = await client.post(
            VERIFY, json={"token": await _link_sent_to(session, free_address)}
        )
        assert stale.status_code == 400

    async def test_taken_meanwhile_is_409_and_changes_nothing(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        new = unique_email("contested")
        assert (await _ask(client, new)).status_code == 202
        token = await _link_sent_to(session, new)
        await create_user(session, email=new)

        refused = await client.post(VERIFY, json={"token": token})

        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "email_taken"
        assert (await _fresh(session, user)).email != new
        assert (await client.get(f"{API}/auth/me")).status_code == 200

    async def test_a_newer_request_kills_the_older_link(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        first, second = unique_email("first"), unique_email("second")
        await _ask(client, first)
        await _ask(client, second)
        stale = await client.post(VERIFY, json={"token": await _link_sent_to(session, first)})
        assert stale.status_code == 400
        assert (await _fresh(session, user)).email == user.email

    async def test_an_expired_link_does_nothing(
        self, session: AsyncSession, client: httpx.AsyncClient, clock: ModuleType
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        new = unique_email()
        await _ask(client, new)
        token = await _link_sent_to(session, new)
        clock.travel(timedelta(days=3))
        expired = await client.post(VERIFY, json={"token": token})
        assert expired.status_code == 400
        assert expired.json()["code"] == "invalid_token"


class TestSessionsAndTokens:
    async def test_other_sessions_end_and_the_confirming_one_stays(
        self, session: AsyncSession, client: httpx.AsyncClient, new_client: NewClient
    ) -> None:
        user = await create_user(session)
        phone = await new_client()
        await sign_in(session, client, user)
        await sign_in(session, phone, user)
        new = unique_email()
        await _ask(client, new)

        confirmed = await client.post(VERIFY, json={"token": await _link_sent_to(session, new)})

        assert confirmed.status_code == 200
        assert (await client.get(f"{API}/auth/me")).status_code == 200
        assert (await phone.get(f"{API}/auth/me")).status_code == 401

    async def test_confirming_signed_out_ends_every_session(
        self, session: AsyncSession, client: httpx.AsyncClient, new_client: NewClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        new = unique_email()
        await _ask(client, new)
        elsewhere = await new_client()
        confirmed = await elsewhere.post(VERIFY, json={"token": await _link_sent_to(session, new)})
        assert confirmed.status_code == 200
        assert (await client.get(f"{API}/auth/me")).status_code == 401

    async def test_links_sent_to_the_old_address_die(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        old = user.email
        await client.post(f"{API}/auth/request-password-reset", json={"email": old})
        reset_token = link_token((await outbox_bodies(session, old))[-1], "reset-password")
        new = unique_email()
        await _ask(client, new)
        await client.post(VERIFY, json={"token": await _link_sent_to(session, new)})

        validity = await client.get(
            f"{API}/auth/validate-reset-token", params={"token": reset_token}
        )
        assert validity.json() == {"valid": False}


class TestConcurrentConfirmations:
    async def test_two_accounts_confirming_one_address_one_wins(
        self, committed_db: Database, committed_client: httpx.AsyncClient
    ) -> None:
        contested = unique_email("contested")
        tokens: list[str] = []
        async with transaction(committed_db) as s:
            ann = await create_user(s, display_name="Ann")
            bob = await create_user(s, display_name="Bob")
        for user in (ann, bob):
            async with transaction(committed_db) as s:
                await sign_in(s, committed_client, user)
            assert (await _ask(committed_client, contested)).status_code == 202
            async with transaction(committed_db) as s:
                tokens.append(await _link_sent_to(s, contested))
        committed_client.cookies.clear()

        answers = await asyncio.gather(
            *(committed_client.post(VERIFY, json={"token": token}) for token in tokens)
        )

        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        async with transaction(committed_db, write=False) as s:
            owners = list(await s.scalars(select(User.id).where(User.email == contested)))
        assert len(owners) == 1


class TestTiming:
    async def test_a_taken_address_takes_about_as_long_as_a_free_one(
        self, session: AsyncSession, db: RolledBackDatabase
    ) -> None:
        owner = await create_user(session)
        user = await create_user(session)
        app = create_app(make_settings(RATE_LIMIT_ENABLED=False), database=db)
        async for client in _client_for(app):
            await sign_in(session, client, user)
            free, taken = await _medians(
                partial(_ask_fresh, client), partial(_ask, client, owner.email), 202
            )
        print(f"email change median: free {free * 1000:.1f} ms, taken {taken * 1000:.1f} ms")
        assert 0.5 < free / taken < 2.0


class TestRateLimit:
    async def test_one_address_is_not_emailed_without_end(
        self, session: AsyncSession, db: RolledBackDatabase
    ) -> None:
        target = unique_email("victim")
        app = create_app(make_settings(RATE_LIMIT_REGISTER="2/hour"), database=db)
        answers = []
        async for client in _client_for(app):
            for _ in range(3):
                await sign_in(session, client, await create_user(session))
                answers.append(await _ask(client, target))
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert "retry-after" in answers[-1].headers
        assert len(await outbox_bodies(session, target)) == 2


class TestInternationalAddresses:
    async def test_a_non_ascii_new_address_is_confirmed_like_any_other(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session)
        await sign_in(session, client, user)
        for address in ("jürgen@example.org", "ada@bücher.de"):
            asked = await _ask(client, address)
            assert asked.status_code == 202, asked.text
            token = await _link_sent_to(session, address)
            confirmed = await client.post(VERIFY, json={"token": token})
            assert confirmed.status_code == 200, confirmed.text
            assert confirmed.json()["email"] == address
