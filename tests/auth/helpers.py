"""Helpers shared by the identity tests."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

API = "/api/v1"
STRONG_PASSWORD = "correct-Horse-battery-staple-7"


def unique_email(prefix: str = "person") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


async def register(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    password: str = STRONG_PASSWORD,
    display_name: str = "Pat Example",
    **extra: Any,
) -> httpx.Response:
    body = {
        "email": email or unique_email(),
        "password": password,
        "display_name": display_name,
        **extra,
    }
    return await client.post(f"{API}/auth/register", json=body)


async def register_and_login(
    client: httpx.AsyncClient, *, email: str | None = None, password: str = STRONG_PASSWORD
) -> httpx.Response:
    """Register (202, nobody signed in) and then sign in; the login's answer."""
    email = email or unique_email()
    registered = await register(client, email=email, password=password)
    assert registered.status_code == 202, registered.text
    return await login(client, email, password)


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """Log in and, on success, send the new CSRF token on later requests."""
    response = await client.post(f"{API}/auth/login", json={"email": email, "password": password})
    if response.status_code == 200:
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return response


def session_cookie(client: httpx.AsyncClient) -> str:
    value = client.cookies.get("townsquare_session")
    assert value, "the client holds no session cookie"
    return value


def use_session_cookie(client: httpx.AsyncClient, token: str) -> None:
    client.cookies.delete("townsquare_session")
    client.cookies.set("townsquare_session", token, domain="testserver.local")


def link_token(text: str, path: str) -> str:
    match = re.search(rf"http://testserver/{path}\?token=([A-Za-z0-9_\-]+)", text)
    assert match, f"no {path} link in the email"
    return match.group(1)


async def outbox_bodies(session: object, to: str) -> list[str]:
    """Text bodies of the outbox emails to `to`, oldest first."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession

    from townsquare.email.models import OutboxEmail

    assert isinstance(session, AsyncSession)
    rows = await session.scalars(
        select(OutboxEmail)
        .where(OutboxEmail.to_address == to)
        .order_by(OutboxEmail.created_at, OutboxEmail.id)
        .execution_options(populate_existing=True)
    )
    return [row.text_body for row in rows]
