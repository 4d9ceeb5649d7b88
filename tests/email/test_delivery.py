"""Delivering the outbox: claim, send, record; retries, permanent failures, leases."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, make_settings
from tests.email.servers import RecordingHandler, SmtpServer, free_port
from townsquare.config import Settings
from townsquare.email.delivery import (
    claim_batch,
    deliver_batch,
    purge_finished,
    record_outcomes,
    retry_delay,
)
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail
from townsquare.email.senders import DeliveryError
from townsquare.email.service import enqueue_email
from townsquare.kit import clock as app_clock


async def _reload(session: AsyncSession, row: OutboxEmail) -> OutboxEmail:
    fresh = await session.scalar(
        select(OutboxEmail)
        .where(OutboxEmail.id == row.id)
        .execution_options(populate_existing=True)
    )
    assert fresh is not None
    return fresh


async def _enqueue(session: AsyncSession, to: str = "ada@example.org") -> OutboxEmail:
    row = await enqueue_email(session, to=to, template="test", context={"sent_by": "Ada"})
    await session.commit()
    return row


class TestFileBackend:
    async def test_writes_eml_and_marks_sent(
        self, db: RolledBackDatabase, session: AsyncSession, tmp_path: Path
    ) -> None:
        settings = make_settings(EMAIL_BACKEND="file", EMAIL_FILE_DIR=tmp_path)
        row = await _enqueue(session)
        app_clock.travel(timedelta(minutes=1))

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
        assert sent.updated_at >= row.created_at + timedelta(minutes=1)
        assert sent.locked_by is None
        assert await deliver_batch(db, settings, worker_id="test") == 0


class TestSmtpDelivery:
    async def test_message_reaches_smtp_server(
        self, db: RolledBackDatabase, session: AsyncSession, smtp_server: SmtpServer
    ) -> None:
        settings = make_settings(
            EMAIL_FROM="Townsquare <hello@townsquare.test>", **smtp_server.settings()
        )
        row = await _enqueue(session)

        assert await deliver_batch(db, settings, worker_id="test") == 1

        assert len(smtp_server.messages) == 1
        message = smtp_server.messages[0]
        assert message["From"] == "Townsquare <hello@townsquare.test>"
        assert message["To"] == "ada@example.org"
        assert message["Subject"] == "Townsquare test email"
        assert message["Message-ID"] == row.message_id
        assert message["Date"] is not None
        assert message.get_content_type() == "multipart/alternative"
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert text is not None
        assert html is not None
        assert "sent by Ada" in text.get_content()
        assert "<p>This is a test email from Townsquare, sent by Ada.</p>" in html.get_content()
        assert smtp_server.handler.envelopes == [("hello@townsquare.test", ["ada@example.org"])]

        sent = await _reload(session, row)
        assert sent.status == EmailStatus.sent
        assert sent.provider_message_id == "Q000001"
        assert sent.text_body == ""  # one-time links do not outlive delivery
        assert sent.html_body is None

    async def test_batch_delivers_each_email_once(
        self, db: RolledBackDatabase, session: AsyncSession, smtp_server: SmtpServer
    ) -> None:
        settings = make_settings(**smtp_server.settings())
        rows = [await _enqueue(session, f"user{i}@example.org") for i in range(5)]

        assert await deliver_batch(db, settings, worker_id="test") == 5

        assert sorted(smtp_server.handler.message_ids()) == sorted(r.message_id for r in rows)

    async def test_server_down_then_back(
        self,
        db: RolledBackDatabase,
        session: AsyncSession,
        clock: ModuleType,
    ) -> None:
        port = free_port()
        settings = make_settings(
            EMAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_TIMEOUT=2
        )
        row = await _enqueue(session)

        assert await deliver_batch(db, settings, worker_id="test") == 1

        waiting = await _reload(session, row)
        assert waiting.status == EmailStatus.pending
        assert waiting.attempts == 1
        assert waiting.last_error is not None
        assert waiting.last_error.startswith("SMTP ")
        assert waiting.next_attempt_at > clock.now()
        assert waiting.locked_by is None
        # Not due yet: nothing to claim.
        assert await deliver_batch(db, settings, worker_id="test") == 0

        server = SmtpServer(port=port).start()
        try:
            clock.travel(timedelta(seconds=settings.EMAIL_RETRY_BASE_SECONDS + 1))
            assert await deliver_batch(db, settings, worker_id="test") == 1
            assert server.handler.message_ids() == [row.message_id]
        finally:
            server.stop()
        sent = await _reload(session, row)
        assert sent.status == EmailStatus.sent
        assert sent.attempts == 2
        assert sent.last_error is None

    async def test_refused_recipient_fails_at_once(
        self, db: RolledBackDatabase, session: AsyncSession
    ) -> None:
        handler = RecordingHandler(refuse={"ghost@example.org"})
        server = SmtpServer(handler).start()
        try:
            settings = make_settings(**server.settings())
            ghost = await _enqueue(session, "ghost@example.org")
            ada = await _enqueue(session, "ada@example.org")

            assert await deliver_batch(db, settings, worker_id="test") == 2
        finally:
            server.stop()
        failed = await _reload(session, ghost)
        assert failed.status == EmailStatus.failed
        assert failed.attempts == 1
        assert failed.last_error is not None
        assert "550" in failed.last_error
        assert (await _reload(session, ada)).status == EmailStatus.sent
        assert handler.message_ids() == [ada.message_id]

    async def test_gives_up_after_max_attempts(
        self, db: RolledBackDatabase, session: AsyncSession, clock: ModuleType
    ) -> None:
        settings = make_settings(
            EMAIL_BACKEND="smtp",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=free_port(),
            EMAIL_MAX_ATTEMPTS=3,
            SMTP_USERNAME="townsquare",
            SMTP_PASSWORD="hunter2-smtp-secret",
        )
        row = await _enqueue(session)
        for _ in range(3):
            assert await deliver_batch(db, settings, worker_id="test") == 1
            clock.travel(timedelta(seconds=settings.EMAIL_RETRY_MAX_SECONDS + 1))

        failed = await _reload(session, row)
        assert failed.status == EmailStatus.failed
        assert failed.attempts == 3
        assert failed.last_error is not None
        assert "hunter2" not in failed.last_error
        assert await deliver_batch(db, settings, worker_id="test") == 0


class TestRetryDelay:
    def test_grows_exponentially_within_bounds(self) -> None:
        settings = make_settings(EMAIL_RETRY_BASE_SECONDS=10, EMAIL_RETRY_MAX_SECONDS=300)
        for attempts, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (6, 300), (20, 300)]:
            delays = [retry_delay(attempts, settings) for _ in range(50)]
            assert all(ceiling / 2 <= d <= ceiling for d in delays)
            assert len(set(delays)) > 1  # jitter


class _FlakySender:
    name = "flaky"
    timeout_seconds = 1.0

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: EmailMessage) -> str:
        if "flaky" in str(message["To"]):
            raise DeliveryError("451 try later")
        self.sent.append(str(message["Message-ID"]))
        return f"id-{len(self.sent)}"

    async def aclose(self) -> None:
        return None


class TestLeases:
    async def test_claimed_rows_are_not_claimed_twice(
        self, db: RolledBackDatabase, session: AsyncSession, settings: Settings
    ) -> None:
        for i in range(3):
            await _enqueue(session, f"u{i}@example.org")

        first = await claim_batch(db, settings, worker_id="a", limit=2)
        second = await claim_batch(db, settings, worker_id="b", limit=5)
        third = await claim_batch(db, settings, worker_id="c", limit=5)

        assert len(first.emails) == 2
        assert len(second.emails) == 1
        assert third.emails == []
        assert {e.id for e in first.emails}.isdisjoint({e.id for e in second.emails})

    async def test_expired_lease_is_taken_over(
        self, db: RolledBackDatabase, session: AsyncSession, clock: ModuleType
    ) -> None:
        settings = make_settings(WORKER_LEASE_SECONDS=30)
        row = await _enqueue(session)
        claim = await claim_batch(db, settings, worker_id="dead-worker")
        assert [e.id for e in claim.emails] == [row.id]

        clock.travel(timedelta(seconds=29))
        assert (await claim_batch(db, settings, worker_id="other")).emails == []

        clock.travel(timedelta(seconds=2))
        sender = _FlakySender()
        assert await deliver_batch(db, settings, worker_id="other", sender=sender) == 1
        assert sender.sent == [row.message_id]
        sent = await _reload(session, row)
        assert sent.status == EmailStatus.sent
        assert sent.attempts == 2

    async def test_late_outcome_of_lost_lease_is_not_recorded(
        self, db: RolledBackDatabase, session: AsyncSession, clock: ModuleType
    ) -> None:
        settings = make_settings(WORKER_LEASE_SECONDS=30)
        row = await _enqueue(session)
        slow = await claim_batch(db, settings, worker_id="slow")
        clock.travel(timedelta(seconds=31))
        fresh = await claim_batch(db, settings, worker_id="fresh")
        assert [e.id for e in fresh.emails] == [row.id]

        late = await record_outcomes(db, settings, slow.token, [(slow.emails[0], "late")])
        assert late == [False]
        on_time = [(fresh.emails[0], "on-time")]
        assert await record_outcomes(db, settings, fresh.token, on_time) == [True]
        assert (await _reload(session, row)).provider_message_id == "on-time"

    async def test_batch_hands_back_what_it_has_no_time_to_send(
        self, db: RolledBackDatabase, session: AsyncSession, clock: ModuleType
    ) -> None:
        settings = make_settings(WORKER_LEASE_SECONDS=10, EMAIL_SEND_CONCURRENCY=1)
        rows = [await _enqueue(session, f"u{i}@example.org") for i in range(3)]

        class SlowSender(_FlakySender):
            timeout_seconds = 4.0

            async def send(self, message: EmailMessage) -> str:
                result = await super().send(message)
                app_clock.travel(timedelta(seconds=3))  # each send eats 3 s of the lease
                return result

        sender = SlowSender()
        assert await deliver_batch(db, settings, worker_id="w", sender=sender) == 3

        assert len(sender.sent) == 2
        statuses = [(await _reload(session, r)) for r in rows]
        assert [s.status for s in statuses] == [
            EmailStatus.sent,
            EmailStatus.sent,
            EmailStatus.pending,
        ]
        assert statuses[2].attempts == 0
        assert statuses[2].locked_by is None

    async def test_repeatedly_abandoned_email_fails(
        self, db: RolledBackDatabase, session: AsyncSession, clock: ModuleType
    ) -> None:
        settings = make_settings(WORKER_LEASE_SECONDS=10, EMAIL_MAX_ATTEMPTS=2)
        row = await _enqueue(session)
        for _ in range(2):
            assert len((await claim_batch(db, settings, worker_id="crashy")).emails) == 1
            clock.travel(timedelta(seconds=11))

        assert (await claim_batch(db, settings, worker_id="next")).emails == []
        failed = await _reload(session, row)
        assert failed.status == EmailStatus.failed
        assert failed.last_error is not None
        assert "interrupted" in failed.last_error


class TestConcurrency:
    async def test_lanes_send_at_the_same_time(
        self, db: RolledBackDatabase, session: AsyncSession
    ) -> None:
        import asyncio

        settings = make_settings(EMAIL_SEND_CONCURRENCY=4)
        rows = [await _enqueue(session, f"u{i}@example.org") for i in range(8)]
        in_flight = 0
        most_in_flight = 0
        # A send returns only once four are under way: fewer lanes would time the sends out.
        four_at_once = asyncio.Barrier(4)

        class SlowSender(_FlakySender):
            async def send(self, message: EmailMessage) -> str:
                nonlocal in_flight, most_in_flight
                in_flight += 1
                most_in_flight = max(most_in_flight, in_flight)
                await four_at_once.wait()
                in_flight -= 1
                return await super().send(message)

        sender = SlowSender()
        assert await deliver_batch(db, settings, worker_id="w", sender=sender) == 8

        assert most_in_flight == 4
        assert sorted(sender.sent) == sorted(r.message_id for r in rows)
        statuses = {(await _reload(session, r)).status for r in rows}
        assert statuses == {EmailStatus.sent}


class TestTemporaryFailures:
    async def test_only_failing_email_is_retried(
        self, db: RolledBackDatabase, session: AsyncSession, settings: Settings
    ) -> None:
        flaky = await _enqueue(session, "flaky@example.org")
        fine = await _enqueue(session, "fine@example.org")
        sender = _FlakySender()

        assert await deliver_batch(db, settings, worker_id="w", sender=sender) == 2

        assert sender.sent == [fine.message_id]
        retried = await _reload(session, flaky)
        assert retried.status == EmailStatus.pending
        assert retried.last_error == "451 try later"
        assert retried.attempts == 1


class TestPurge:
    async def test_deletes_old_finished_emails_only(
        self, db: RolledBackDatabase, session: AsyncSession, clock: ModuleType
    ) -> None:
        settings = make_settings(EMAIL_RETENTION_DAYS=30)
        old = await _enqueue(session, "old@example.org")
        await deliver_batch(db, settings, worker_id="w", sender=_FlakySender())
        clock.travel(timedelta(days=31))
        recent = await _enqueue(session, "recent@example.org")
        await deliver_batch(db, settings, worker_id="w", sender=_FlakySender())
        pending = await _enqueue(session, "pending@example.org")
        await session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id == pending.id)
            .values(next_attempt_at=clock.now() + timedelta(days=1))
        )
        await session.commit()
        clock.travel(timedelta(days=5))

        assert await purge_finished(db, settings) == 1

        remaining = set(await session.scalars(select(OutboxEmail.id)))
        assert old.id not in remaining
        assert {recent.id, pending.id} <= remaining
        assert await session.scalar(select(func.count()).select_from(OutboxEmail)) == 2


@pytest.mark.parametrize("only", [True, False])
async def test_deliver_only_given_ids(
    db: RolledBackDatabase, session: AsyncSession, settings: Settings, only: bool
) -> None:
    a = await _enqueue(session, "a@example.org")
    b = await _enqueue(session, "b@example.org")
    sender = _FlakySender()
    ids = [a.id] if only else None
    handled = await deliver_batch(db, settings, worker_id="w", sender=sender, only_ids=ids)
    assert handled == (1 if only else 2)
    assert sorted(sender.sent) == sorted([a.message_id] if only else [a.message_id, b.message_id])
