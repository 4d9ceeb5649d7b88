"""`townsquare email send-test ADDRESS`, run as a real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from tests.conftest import TEST_DATABASE_URL
from tests.email.servers import SmtpServer, free_port
from townsquare.db import Database, transaction
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail

TOWNSQUARE = str(Path(sys.executable).parent / "townsquare")


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TOWNSQUARE, *args],
        env={**os.environ, "TOWNSQUARE_DATABASE_URL": TEST_DATABASE_URL, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _outbox(database: Database) -> list[OutboxEmail]:
    async with transaction(database, write=False) as session:
        return list(await session.scalars(select(OutboxEmail)))


class TestSendTest:
    async def test_delivers_right_away(
        self, committed_db: Database, smtp_server: SmtpServer
    ) -> None:
        result = _run(
            ["email", "send-test", "ops@example.org"],
            TOWNSQUARE_EMAIL_BACKEND="smtp",
            TOWNSQUARE_SMTP_HOST="127.0.0.1",
            TOWNSQUARE_SMTP_PORT=str(smtp_server.port),
        )

        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("sent: <")
        [message] = smtp_server.messages
        assert message["To"] == "ops@example.org"
        assert message["Subject"] == "Townsquare test email"
        [row] = await _outbox(committed_db)
        assert row.status == EmailStatus.sent
        assert row.message_id == message["Message-ID"]
        assert row.message_id in result.stdout

    async def test_reports_failure_and_leaves_email_for_the_worker(
        self, committed_db: Database
    ) -> None:
        result = _run(
            ["email", "send-test", "ops@example.org"],
            TOWNSQUARE_EMAIL_BACKEND="smtp",
            TOWNSQUARE_SMTP_HOST="127.0.0.1",
            TOWNSQUARE_SMTP_PORT=str(free_port()),
            TOWNSQUARE_SMTP_TIMEOUT="2",
        )

        assert result.returncode == 1
        assert result.stdout.startswith("pending: <")
        assert "error: SMTP" in result.stderr
        [row] = await _outbox(committed_db)
        assert row.status == EmailStatus.pending
        assert row.attempts == 1

    async def test_queue_only(self, committed_db: Database) -> None:
        result = _run(["email", "send-test", "--queue-only", "ops@example.org"])

        assert result.returncode == 0, result.stderr
        [row] = await _outbox(committed_db)
        assert row.status == EmailStatus.pending
        assert row.attempts == 0

    async def test_bad_address_refused(self, committed_db: Database) -> None:
        result = _run(["email", "send-test", "not an address"])

        assert result.returncode == 2
        assert "not a plain email address" in result.stderr
        assert "Traceback" not in result.stderr
        assert await _outbox(committed_db) == []
