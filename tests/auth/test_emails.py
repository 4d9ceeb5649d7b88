"""Verification and reset emails travel through a real SMTP server, and their links work.
Afterwards a dump of the identity and outbox tables holds no usable secret."""

from __future__ import annotations

from email.message import EmailMessage

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import API, STRONG_PASSWORD, link_token, login, register, unique_email
from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.email.servers import SmtpServer
from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.email.delivery import deliver_batch
from townsquare.kit.tokens import hash_token
from townsquare.main import create_app


def _parts(message: EmailMessage) -> tuple[str, str]:
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    return str(text_part.get_content()), str(html_part.get_content())


async def _deliver(
    db: RolledBackDatabase, settings: Settings, server: SmtpServer, count: int
) -> None:
    await deliver_batch(db, settings, worker_id="identity-tests")
    server.wait_for(count, timeout=10)


async def _dump(session: AsyncSession) -> str:
    """Every value of every row of the tables a stolen backup would expose."""
    values: list[str] = []
    for table in ("users", "user_sessions", "user_tokens", "email_outbox"):
        rows = await session.execute(text(f"SELECT * FROM {table}"))
        values.extend(str(value) for row in rows for value in row)
    return "\n".join(values)


class TestIdentityEmailsOverSmtp:
    async def test_verify_and_reset_links_work_and_dump_has_no_secret(
        self, session: AsyncSession, db: RolledBackDatabase, smtp_server: SmtpServer
    ) -> None:
        settings = make_settings(**smtp_server.settings())
        email = unique_email("smtp")
        secrets: list[str] = []
        async for client in _client_for(create_app(settings, database=db)):
            registered = await register(client, email=email, display_name="Ruth <b>Bold</b>")
            assert registered.status_code == 202
            signed_in = await login(client, email, STRONG_PASSWORD)
            secrets += [client.cookies["townsquare_session"], signed_in.json()["csrf_token"]]

            await _deliver(db, settings, smtp_server, 1)
            verify_message = smtp_server.messages[0]
            assert verify_message["To"] == email
            assert "Confirm your email" in str(verify_message["Subject"])
            text_body, html_body = _parts(verify_message)
            verify_token = link_token(text_body, "verify-email")
            assert verify_token in html_body
            assert "Ruth &lt;b&gt;Bold&lt;/b&gt;" in html_body
            secrets.append(verify_token)
            verified = await client.post(f"{API}/auth/verify-email", json={"token": verify_token})
            assert verified.status_code == 200
            assert verified.json()["email_verified"] is True

            reset = await client.post(f"{API}/auth/request-password-reset", json={"email": email})
            assert reset.status_code == 202
            await _deliver(db, settings, smtp_server, 2)
            reset_message = smtp_server.messages[1]
            assert reset_message["To"] == email
            reset_text, reset_html = _parts(reset_message)
            reset_token = link_token(reset_text, "reset-password")
            assert reset_token in reset_html
            secrets.append(reset_token)
            # Request another link, delivered too: the dump must hold neither.
            await client.post(f"{API}/auth/request-password-reset", json={"email": email})
            await _deliver(db, settings, smtp_server, 3)
            latest_token = link_token(_parts(smtp_server.messages[2])[0], "reset-password")
            secrets.append(latest_token)

            relogged = await login(client, email, STRONG_PASSWORD)
            assert relogged.status_code == 200
            secrets += [client.cookies["townsquare_session"], relogged.json()["csrf_token"]]

            dump = await _dump(session)
            assert hash_token(secrets[-2]) in dump, "the dump covers the live session"
            for secret in secrets:
                assert secret not in dump
            user = await session.scalar(select(User).where(User.email == email))
            assert user is not None
            hashes = (
                await session.execute(
                    text(
                        "SELECT token_hash FROM user_sessions UNION ALL "
                        "SELECT token_hash FROM user_tokens"
                    )
                )
            ).scalars()
            for stolen in hashes:
                thief = await _steal(client, stolen)
                assert (await thief.get(f"{API}/auth/me")).status_code == 401
                check = await thief.get(
                    f"{API}/auth/validate-reset-token", params={"token": stolen}
                )
                assert check.json() == {"valid": False}

            done = await client.post(
                f"{API}/auth/reset-password",
                json={"token": latest_token, "new_password": "brand-New-passphrase-5"},
            )
            assert done.status_code == 200
            assert (await client.get(f"{API}/auth/me")).status_code == 401
            assert (await login(client, email, "brand-New-passphrase-5")).status_code == 200


async def _steal(client: httpx.AsyncClient, value: str) -> httpx.AsyncClient:
    client.cookies.clear()
    client.cookies.set("townsquare_session", value, domain="testserver.local")
    return client
