"""Each backend against the real thing: console log, .eml files, SES (moto server)."""

from __future__ import annotations

import email
import email.policy
import logging
from email.message import EmailMessage

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, make_settings
from tests.email.servers import SesServer
from townsquare.email.delivery import deliver_batch
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail
from townsquare.email.senders import (
    ConsoleSender,
    FileSender,
    SesSender,
    SmtpSender,
    create_sender,
)
from townsquare.email.service import enqueue_email


async def _enqueue(session: AsyncSession, to: str = "ada@example.org") -> OutboxEmail:
    row = await enqueue_email(session, to=to, template="test", context={"sent_by": "Ada"})
    await session.commit()
    return row


async def _reload(session: AsyncSession, row: OutboxEmail) -> OutboxEmail:
    fresh = await session.scalar(
        select(OutboxEmail)
        .where(OutboxEmail.id == row.id)
        .execution_options(populate_existing=True)
    )
    assert fresh is not None
    return fresh


class TestCreateSender:
    @pytest.mark.parametrize(
        ("backend", "kind"),
        [
            ("console", ConsoleSender),
            ("file", FileSender),
            ("smtp", SmtpSender),
            ("ses", SesSender),
        ],
    )
    def test_backend_setting_chooses_sender(self, backend: str, kind: type) -> None:
        assert isinstance(create_sender(make_settings(EMAIL_BACKEND=backend)), kind)


class TestConsoleSender:
    async def test_logs_the_email(
        self,
        db: RolledBackDatabase,
        session: AsyncSession,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        row = await _enqueue(session)
        with caplog.at_level(logging.INFO, logger="townsquare.email"):
            assert await deliver_batch(db, make_settings(), worker_id="w") == 1
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "ada@example.org" in logged
        assert "Townsquare test email" in logged
        assert "sent by Ada" in logged
        assert (await _reload(session, row)).status == EmailStatus.sent


class TestSesSender:
    async def test_message_reaches_ses(
        self, db: RolledBackDatabase, session: AsyncSession, ses_server: SesServer
    ) -> None:
        await ses_server.verify_identity("hello@townsquare.test")
        settings = make_settings(
            EMAIL_FROM="Townsquare <hello@townsquare.test>", **ses_server.settings()
        )
        row = await _enqueue(session)

        assert await deliver_batch(db, settings, worker_id="w") == 1

        sent = await _reload(session, row)
        assert sent.status == EmailStatus.sent
        [received] = ses_server.sent_messages()
        assert sent.provider_message_id == received.id
        assert "ada@example.org" in received.destinations
        assert received.source == "Townsquare <hello@townsquare.test>"
        parsed = email.message_from_string(received.raw_data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        assert parsed["Message-ID"] == row.message_id
        assert parsed["Subject"] == "Townsquare test email"
        assert parsed.get_content_type() == "multipart/alternative"
        assert parsed.get_body(preferencelist=("html",)) is not None

    async def test_unverified_sender_is_refused_for_good(
        self, db: RolledBackDatabase, session: AsyncSession, ses_server: SesServer
    ) -> None:
        settings = make_settings(
            EMAIL_FROM="Townsquare <nobody@unverified.test>", **ses_server.settings()
        )
        row = await _enqueue(session)

        assert await deliver_batch(db, settings, worker_id="w") == 1

        failed = await _reload(session, row)
        assert failed.status == EmailStatus.failed
        assert failed.last_error is not None
        assert failed.last_error.startswith("SES MessageRejected")
        assert "testing-secret-key" not in failed.last_error
        assert ses_server.sent_messages() == []

    async def test_unreachable_endpoint_is_retried(
        self, db: RolledBackDatabase, session: AsyncSession
    ) -> None:
        from tests.email.servers import free_port

        settings = make_settings(
            EMAIL_BACKEND="ses",
            SES_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
            SES_ACCESS_KEY_ID="testing",
            SES_SECRET_ACCESS_KEY="testing-secret-key",
            SES_TIMEOUT=2,
        )
        row = await _enqueue(session)

        assert await deliver_batch(db, settings, worker_id="w") == 1

        waiting = await _reload(session, row)
        assert waiting.status == EmailStatus.pending
        assert waiting.attempts == 1
        assert waiting.last_error is not None
        assert waiting.last_error.startswith("SES ")
