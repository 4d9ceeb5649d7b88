"""Delivering the outbox through the configured sender."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, make_settings
from townsquare.email.delivery import deliver_batch
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail
from townsquare.email.service import enqueue_email


async def _reload(session: AsyncSession, row: OutboxEmail) -> OutboxEmail:
    fresh = await session.scalar(
        select(OutboxEmail)
        .where(OutboxEmail.id == row.id)
        .execution_options(populate_existing=True)
    )
    assert fresh is not None
    return fresh


class TestFileBackend:
    async def test_writes_eml_and_marks_sent(
        self, db: RolledBackDatabase, session: AsyncSession, tmp_path: Path
    ) -> None:
        settings = make_settings(EMAIL_BACKEND="file", EMAIL_FILE_DIR=tmp_path)
        row = await enqueue_email(
            session, to="ada@example.org", template="test", context={"sent_by": "Ada"}
        )
        await session.commit()

        assert await deliver_batch(db, settings, worker_id="test") == 1

        files = list(tmp_path.glob("*.eml"))
        assert len(files) == 1
        parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        assert parsed["Message-ID"] == row.message_id
        assert parsed["To"] == "ada@example.org"
        assert parsed["Subject"] == "Townsquare test email"
        sent = await _reload(session, row)
        assert sent.status == EmailStatus.sent
        assert sent.attempts == 1
        assert sent.sent_at is not None
        assert sent.provider_message_id == files[0].name
        assert sent.locked_by is None
        assert await deliver_batch(db, settings, worker_id="test") == 0
