"""Internationalized addresses through the API: register, verify, reset, invite."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import (
    API,
    STRONG_PASSWORD,
    link_token,
    login,
    outbox_bodies,
    register,
)
from tests.conftest import RolledBackDatabase, make_settings
from tests.email.servers import SmtpServer
from tests.factories import add_member, create_organization, create_user, sign_in
from townsquare.auth.models import User
from townsquare.email.delivery import deliver_batch
from townsquare.orgs.enums import MemberRole

ADDRESS = "jürgen@example.org"


def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert all("jürgen" not in (r.exc_text or "") for r in caplog.records)


async def test_register_verify_and_sign_in(
    session: AsyncSession,
    client: httpx.AsyncClient,
    db: RolledBackDatabase,
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    response = await register(client, email="JÜRGEN@example.org")

    assert response.status_code == 202, response.text
    user = await session.scalar(select(User).where(User.email == ADDRESS))
    assert user is not None
    assert await deliver_batch(db, make_settings(**smtp_server.settings()), worker_id="t") == 1
    [message] = smtp_server.messages
    assert message["To"] == ADDRESS
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    token = link_token(text.get_content(), "verify-email")
    assert (await client.post(f"{API}/auth/verify-email", json={"token": token})).status_code in (
        200,
        204,
    )
    signed_in = await login(client, ADDRESS, STRONG_PASSWORD)
    assert signed_in.status_code == 200
    assert signed_in.json()["user"]["email_verified"] is True
    _no_errors_logged(caplog)


async def test_password_reset_and_resend_verification(
    session: AsyncSession, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert (await register(client, email=ADDRESS)).status_code == 202
    assert (await login(client, ADDRESS, STRONG_PASSWORD)).status_code == 200

    resend = await client.post(f"{API}/auth/resend-verification")
    reset = await client.post(f"{API}/auth/request-password-reset", json={"email": ADDRESS})

    assert resend.status_code == 202, resend.text
    assert reset.status_code == 202, reset.text
    bodies = await outbox_bodies(session, ADDRESS)
    assert len(bodies) == 3
    assert "reset-password?token=" in bodies[-1]
    _no_errors_logged(caplog)


@pytest.mark.parametrize("address", ["jürgen@", "jür gen@example.org", "jürgen@bü..de"])
async def test_malformed_international_address_is_422(
    client: httpx.AsyncClient, address: str
) -> None:
    response = await register(client, email=address)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "email"


async def test_invitation_to_international_address(
    session: AsyncSession,
    client: httpx.AsyncClient,
    new_client: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    owner = await create_user(session)
    org = await create_organization(session, name="Acme", slug="acme-intl")
    await add_member(session, org, owner, MemberRole.owner)
    await sign_in(session, client, owner)

    created = await client.post(
        f"{API}/orgs/{org.slug}/invitations", json={"email": "Jürgen@Example.org"}
    )

    assert created.status_code == 201, created.text
    assert created.json()["email"] == ADDRESS
    [body] = await outbox_bodies(session, ADDRESS)
    assert "invitations/" in body
    _no_errors_logged(caplog)
