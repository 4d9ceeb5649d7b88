"""The console without JavaScript: forms post and redirect, errors show as sentences
next to their fields, every form needs its CSRF token, everything printed is escaped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.factories import create_organization, create_user
from tests.web.helpers import csrf_of, field_error, post_form, sign_in_form
from townsquare.auth.models import UserSession
from townsquare.email.models import OutboxEmail
from townsquare.kit.tokens import hash_token
from townsquare.main import create_app
from townsquare.orgs.models import Organization

XSS = "<img src=x onerror=alert(1)>"


async def _client(db: RolledBackDatabase, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client_for(create_app(make_settings(**overrides), database=db)):
        yield client


@pytest.fixture
async def dev_client(db: RolledBackDatabase) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(db, ENV="development"):
        yield client


async def test_register_redirects_to_sign_in_and_emails_a_link(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    answer = await post_form(
        client,
        "/register",
        {"display_name": "Ada", "email": "ada@example.com", "password": "correct-horse-battery"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?notice=registered"
    notice = await client.get(answer.headers["location"])
    assert "Check your inbox" in notice.text
    subjects = (
        await session.scalars(
            select(OutboxEmail.text_body).where(OutboxEmail.to_address == "ada@example.com")
        )
    ).all()
    assert len(subjects) == 1
    assert "http://testserver/verify-email?token=" in subjects[0]


async def test_register_shows_validation_next_to_the_field(client: httpx.AsyncClient) -> None:
    answer = await post_form(
        client, "/register", {"display_name": "Ada", "email": "not-an-email", "password": "short"}
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert field_error(answer, "email")
    assert "10" in field_error(answer, "password")
    assert 'value="not-an-email"' in answer.text
    assert 'value="short"' not in answer.text


async def test_wrong_password_shows_a_message_by_the_password(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    answer = await sign_in_form(client, user.email, "not-the-password-at-all")
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("text/html")
    assert field_error(answer, "password") == "The email address or the password is wrong."
    assert f'value="{user.email}"' in answer.text


async def test_sign_in_then_home_then_sign_out(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, display_name="Grace")
    answer = await sign_in_form(client, user.email)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    home = await client.get("/")
    assert "Welcome, Grace" in home.text
    signed_out = await client.post("/logout", data={"csrf_token": csrf_of(home)})
    assert signed_out.status_code == 303
    assert (await client.get("/")).headers["location"] == "/login"


async def test_sign_in_never_sends_the_browser_elsewhere(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    page = await client.get("/login")
    answer = await client.post(
        "/login",
        data={
            "csrf_token": csrf_of(page),
            "email": user.email,
            "password": "a-long-Unusual-passphrase-42",
            "next": "//evil.example/",
        },
    )
    assert answer.headers["location"] == "/"


async def test_rate_limit_shows_as_a_sentence(
    db: RolledBackDatabase, session: AsyncSession
) -> None:
    user = await create_user(session)
    async for client in _client(db, RATE_LIMIT_LOGIN_ACCOUNT="2/minute"):
        for _ in range(2):
            assert (await sign_in_form(client, user.email, "wrong-password-1")).status_code == 401
        answer = await sign_in_form(client, user.email, "wrong-password-1")
        assert answer.status_code == 429
        assert field_error(answer, "password").startswith("Too many attempts; try again in")


async def test_a_form_without_its_csrf_token_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    await sign_in_form(client, user.email)
    await client.get("/orgs")
    refused = await client.post("/orgs", data={"name": "Sneaky"})
    assert refused.status_code == 403
    assert "did not come from this site" in refused.text
    wrong = await client.post("/orgs", data={"name": "Sneaky", "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    count = await session.scalar(select(func.count()).select_from(Organization))
    assert count == 0


async def test_a_sign_in_form_without_its_token_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    answer = await client.post(
        "/login", data={"email": user.email, "password": "a-long-Unusual-passphrase-42"}
    )
    assert answer.status_code == 403
    assert "townsquare_session" not in answer.headers.get("set-cookie", "")


async def test_a_form_from_another_origin_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    page = await client.get("/login")
    answer = await client.post(
        "/login",
        data={"csrf_token": csrf_of(page), "email": user.email, "password": "x" * 12},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403


async def test_create_and_switch_organizations(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    other = await create_organization(session, owner=user, name="Zeta Club", slug="zeta-club")
    await sign_in_form(client, user.email)
    created = await post_form(client, "/orgs", {"name": "Alpha Society", "slug": ""})
    assert created.status_code == 303
    listing = await client.get("/orgs")
    assert "Alpha Society" in listing.text
    assert "alpha-society" in listing.text
    home = await client.get("/")
    assert "You are working in <strong>Alpha Society</strong>" in home.text
    switched = await post_form(client, "/orgs", {"org": other.slug}, action="/orgs/switch")
    assert switched.status_code == 303
    assert "You are working in <strong>Zeta Club</strong>" in (await client.get("/")).text


async def test_a_taken_slug_shows_by_the_slug(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    await create_organization(session, name="Taken", slug="taken")
    await sign_in_form(client, user.email)
    answer = await post_form(client, "/orgs", {"name": "Mine", "slug": "taken"})
    assert answer.status_code == 409
    assert "already uses this slug" in field_error(answer, "slug")
    assert 'value="Mine"' in answer.text


async def test_names_are_printed_as_text(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session, display_name=XSS)
    await create_organization(session, owner=user, name=XSS)
    await sign_in_form(client, user.email)
    for path in ("/", "/orgs"):
        page = await client.get(path)
        assert XSS not in page.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text


async def test_pages_forbid_inline_scripts_and_framing(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"


async def test_vendored_files_are_cached_for_a_year(client: httpx.AsyncClient) -> None:
    for path in (
        "/static/vendor/htmx/htmx-2.0.11.min.js",
        "/static/vendor/pico/pico-2.1.1.classless.min.css",
    ):
        answer = await client.get(path)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_change_password_needs_the_current_one(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    await sign_in_form(client, user.email)
    wrong = await post_form(
        client,
        "/account/password",
        {"current_password": "not-my-password", "new_password": "a-brand-new-passphrase"},
    )
    assert wrong.status_code == 400
    assert field_error(wrong, "current_password") == "The current password is wrong."
    right = await post_form(
        client,
        "/account/password",
        {
            "current_password": "a-long-Unusual-passphrase-42",
            "new_password": "a-brand-new-passphrase",
        },
    )
    assert right.status_code == 303
    sessions_page = await client.get(right.headers["location"])
    assert "your other sessions have ended" in sessions_page.text


async def test_end_another_session(
    client: httpx.AsyncClient,
    new_client: Callable[[], Awaitable[httpx.AsyncClient]],
    session: AsyncSession,
) -> None:
    user = await create_user(session)
    other = await new_client()
    await sign_in_form(other, user.email)
    await sign_in_form(client, user.email)
    page = await client.get("/account/sessions")
    assert page.text.count("/end") == 2
    assert page.text.count("(this one)") == 1
    other_id = await session.scalar(
        select(UserSession.id).where(
            UserSession.token_hash == hash_token(other.cookies["townsquare_session"])
        )
    )
    assert f'action="/account/sessions/{other_id}/end"' in page.text
    answer = await client.post(
        f"/account/sessions/{other_id}/end", data={"csrf_token": csrf_of(page)}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account/sessions?notice=session_ended"
    assert (await other.get("/")).headers["location"] == "/login"


async def test_a_refused_end_shows_the_sessions_again(
    client: httpx.AsyncClient,
    new_client: Callable[[], Awaitable[httpx.AsyncClient]],
    session: AsyncSession,
) -> None:
    user = await create_user(session)
    other = await new_client()
    await sign_in_form(other, user.email)
    await sign_in_form(client, user.email)
    other_id = await session.scalar(
        select(UserSession.id).where(
            UserSession.token_hash == hash_token(other.cookies["townsquare_session"])
        )
    )
    answer = await client.post(f"/account/sessions/{other_id}/end", data={"csrf_token": "x"})
    assert answer.status_code == 403
    assert "did not come from this site" in answer.text
    assert answer.text.count("/end") == 2
    assert f'action="/account/sessions/{other_id}/end"' in answer.text
    assert (await other.get("/")).status_code == 200


async def test_mailbox_exists_only_in_development(
    client: httpx.AsyncClient, dev_client: httpx.AsyncClient
) -> None:
    assert (await client.get("/dev/mail")).status_code == 404
    await post_form(
        dev_client,
        "/register",
        {"display_name": "Ada", "email": "ada@example.com", "password": "correct-horse-battery"},
    )
    mailbox = await dev_client.get("/dev/mail")
    assert mailbox.status_code == 200
    assert "ada@example.com" in mailbox.text


async def test_mailbox_is_absent_with_a_real_email_backend(db: RolledBackDatabase) -> None:
    async for client in _client(db, ENV="development", EMAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1"):
        assert (await client.get("/dev/mail")).status_code == 404


async def test_an_unverified_person_can_ask_for_a_new_link(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, verified=False)
    await sign_in_form(client, user.email)
    orgs = await client.get("/orgs")
    assert "Until then you cannot create organizations" in orgs.text
    answer = await post_form(client, "/", {}, action="/account/verification")
    assert answer.status_code == 303
    assert (
        "A new verification link is on its way."
        in (await client.get(answer.headers["location"])).text
    )
    sent = await session.scalar(
        select(func.count()).select_from(OutboxEmail).where(OutboxEmail.to_address == user.email)
    )
    assert sent == 1
