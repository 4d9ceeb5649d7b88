"""The development mailbox: sent emails keep their bodies there, links to us clickable."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, _client_for, make_settings
from tests.web.helpers import post_form
from townsquare.email.delivery import deliver_batch
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail
from townsquare.main import create_app
from townsquare.web.dev_mail import links_to_us


async def _register(client: httpx.AsyncClient) -> None:
    answer = await post_form(
        client,
        "/register",
        {"display_name": "Ada", "email": "ada@example.com", "password": "correct-horse-battery"},
    )
    assert answer.status_code == 303


async def test_a_sent_email_keeps_its_link_in_development(
    db: RolledBackDatabase, session: AsyncSession
) -> None:
    settings = make_settings(ENV="development")
    async for client in _client_for(create_app(settings, database=db)):
        await _register(client)
        assert await deliver_batch(db, settings, worker_id="test") == 1
        row = await session.scalar(select(OutboxEmail))
        assert row is not None
        assert row.status == EmailStatus.sent
        page = await client.get(f"/dev/mail/{row.id}")
        assert page.status_code == 200
        assert 'href="http://testserver/verify-email?token=' in page.text


async def test_outside_development_a_sent_email_loses_its_body(
    db: RolledBackDatabase, session: AsyncSession
) -> None:
    settings = make_settings()
    async for client in _client_for(create_app(settings, database=db)):
        await _register(client)
        assert await deliver_batch(db, settings, worker_id="test") == 1
        row = await session.scalar(select(OutboxEmail))
        assert row is not None
        assert row.text_body == ""
        assert (await client.get(f"/dev/mail/{row.id}")).status_code == 404


def test_only_links_to_this_townsquare_become_links() -> None:
    settings = make_settings(PUBLIC_URL="https://town.example")
    text = (
        "Verify: https://town.example/verify-email?token=abc\n"
        "Elsewhere: https://town.example.evil/x and https://other.example/\n"
    )
    assert links_to_us(settings, text) == ["https://town.example/verify-email?token=abc"]
