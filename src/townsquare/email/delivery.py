"""Delivering the outbox: claim a batch under a lease, send outside the claim, record.

Exactly once in the normal case: a claimed row is `sending`, leased to one batch
(`locked_by` is the batch's token), and no other worker takes it while the lease holds
(PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: the write lock). At least once when a
worker dies: its rows stay `sending` until `locked_until` passes, then any worker claims
them again. A batch stops starting new sends before its lease could run out, and hands
the rest back, so a slow provider does not cause duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import and_, or_, select, update

from townsquare.config import Settings
from townsquare.db import SessionSource, transaction
from townsquare.email.enums import EmailStatus
from townsquare.email.models import MESSAGE_ID_MAX, WORKER_ID_MAX, OutboxEmail
from townsquare.email.senders import DeliveryError, EmailSender, create_sender, redact
from townsquare.kit import clock

logger = logging.getLogger("townsquare.email")


@dataclass(frozen=True)
class ClaimedEmail:
    """What a batch needs to send one email, read when it was claimed."""

    id: uuid.UUID
    to_address: str
    subject: str
    text_body: str
    html_body: str | None
    message_id: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Claim:
    token: str
    locked_until: datetime
    emails: Sequence[ClaimedEmail]


def build_message(email: ClaimedEmail, settings: Settings) -> EmailMessage:
    """The MIME message: text, plus HTML as multipart/alternative when there is one."""
    message = EmailMessage()
    message["From"] = settings.EMAIL_FROM
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.created_at)
    message["Message-ID"] = email.message_id
    message.set_content(email.text_body)
    if email.html_body is not None:
        message.add_alternative(email.html_body, subtype="html")
    return message


def retry_delay(attempts: int, settings: Settings) -> float:
    """Seconds before the next try after `attempts` failed ones: exponential, capped, with
    jitter (between half and all of the capped delay) so retries do not arrive in waves."""
    exponent = min(max(attempts - 1, 0), 30)
    ceiling = min(
        settings.EMAIL_RETRY_MAX_SECONDS, settings.EMAIL_RETRY_BASE_SECONDS * float(2**exponent)
    )
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _due(now: datetime) -> object:
    return or_(
        and_(OutboxEmail.status == EmailStatus.pending, OutboxEmail.next_attempt_at <= now),
        and_(OutboxEmail.status == EmailStatus.sending, OutboxEmail.locked_until < now),
    )


async def claim_batch(
    db: SessionSource,
    settings: Settings,
    *,
    worker_id: str,
    limit: int | None = None,
    only_ids: Collection[uuid.UUID] | None = None,
) -> Claim:
    """Lease up to `limit` due emails (pending and due, or abandoned by a dead worker)."""
    now = clock.now()
    token = f"{worker_id[: WORKER_ID_MAX - 9]}/{uuid.uuid4().hex[:8]}"
    locked_until = now + timedelta(seconds=settings.WORKER_LEASE_SECONDS)
    async with transaction(db) as session:
        # A message whose delivery keeps killing its worker must not loop forever.
        await session.execute(
            update(OutboxEmail)
            .where(
                OutboxEmail.status == EmailStatus.sending,
                OutboxEmail.locked_until < now,
                OutboxEmail.attempts >= settings.EMAIL_MAX_ATTEMPTS,
            )
            .values(
                status=EmailStatus.failed,
                locked_until=None,
                locked_by=None,
                last_error="delivery interrupted too often (worker stopped mid-send)",
                text_body="",
                html_body=None,
            )
            .execution_options(synchronize_session=False)
        )
        candidates = (
            select(OutboxEmail.id)
            .where(_due(now))  # type: ignore[arg-type]
            .order_by(OutboxEmail.next_attempt_at)
            .limit(limit or settings.WORKER_BATCH_SIZE)
            .with_for_update(skip_locked=True)
        )
        if only_ids is not None:
            candidates = candidates.where(OutboxEmail.id.in_(list(only_ids)))
        rows = (
            await session.execute(
                update(OutboxEmail)
                .where(OutboxEmail.id.in_(candidates.scalar_subquery()))
                .values(
                    status=EmailStatus.sending,
                    locked_until=locked_until,
                    locked_by=token,
                    attempts=OutboxEmail.attempts + 1,
                )
                .returning(
                    OutboxEmail.id,
                    OutboxEmail.to_address,
                    OutboxEmail.subject,
                    OutboxEmail.text_body,
                    OutboxEmail.html_body,
                    OutboxEmail.message_id,
                    OutboxEmail.attempts,
                    OutboxEmail.created_at,
                    OutboxEmail.next_attempt_at,
                )
                .execution_options(synchronize_session=False)
            )
        ).all()
    ordered = sorted(rows, key=lambda row: row.next_attempt_at)
    emails = [
        ClaimedEmail(
            id=row.id,
            to_address=row.to_address,
            subject=row.subject,
            text_body=row.text_body,
            html_body=row.html_body,
            message_id=row.message_id,
            attempts=row.attempts,
            created_at=clock.as_utc(row.created_at),
        )
        for row in ordered
    ]
    return Claim(token=token, locked_until=locked_until, emails=emails)


async def _finish(
    db: SessionSource, email: ClaimedEmail, token: str, values: dict[str, object]
) -> bool:
    async with transaction(db) as session:
        result = await session.execute(
            update(OutboxEmail)
            .where(
                OutboxEmail.id == email.id,
                OutboxEmail.locked_by == token,
                OutboxEmail.status == EmailStatus.sending,
            )
            .values(locked_until=None, locked_by=None, **values)
            .execution_options(synchronize_session=False)
        )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        logger.warning(
            "outbox email lease lost before its outcome was recorded",
            extra={"email_id": str(email.id)},
        )
        return False
    return True


async def mark_sent(db: SessionSource, email: ClaimedEmail, token: str, provider_id: str) -> bool:
    # The bodies may hold one-time links (verification, reset): they leave with the email.
    return await _finish(
        db,
        email,
        token,
        {
            "status": EmailStatus.sent,
            "sent_at": clock.now(),
            "provider_message_id": provider_id[:MESSAGE_ID_MAX],
            "last_error": None,
            "text_body": "",
            "html_body": None,
        },
    )


async def mark_failed_attempt(
    db: SessionSource, email: ClaimedEmail, token: str, error: DeliveryError, settings: Settings
) -> EmailStatus:
    reason = redact(error.reason, settings)
    if error.permanent or email.attempts >= settings.EMAIL_MAX_ATTEMPTS:
        await _finish(
            db,
            email,
            token,
            {
                "status": EmailStatus.failed,
                "last_error": reason,
                "text_body": "",
                "html_body": None,
            },
        )
        logger.warning(
            "outbox email failed for good",
            extra={"email_id": str(email.id), "attempts": email.attempts, "error": reason},
        )
        return EmailStatus.failed
    delay = retry_delay(email.attempts, settings)
    await _finish(
        db,
        email,
        token,
        {
            "status": EmailStatus.pending,
            "last_error": reason,
            "next_attempt_at": clock.now() + timedelta(seconds=delay),
        },
    )
    logger.info(
        "outbox email delivery failed; will retry",
        extra={"email_id": str(email.id), "attempts": email.attempts, "retry_in": round(delay)},
    )
    return EmailStatus.pending


async def release(db: SessionSource, emails: Sequence[ClaimedEmail], token: str) -> None:
    """Hand back claimed emails that were not tried, as they were before the claim."""
    if not emails:
        return
    async with transaction(db) as session:
        await session.execute(
            update(OutboxEmail)
            .where(
                OutboxEmail.id.in_([e.id for e in emails]),
                OutboxEmail.locked_by == token,
                OutboxEmail.status == EmailStatus.sending,
            )
            .values(
                status=EmailStatus.pending,
                locked_until=None,
                locked_by=None,
                attempts=OutboxEmail.attempts - 1,
            )
            .execution_options(synchronize_session=False)
        )


async def deliver_batch(
    db: SessionSource,
    settings: Settings,
    *,
    worker_id: str,
    sender: EmailSender | None = None,
    only_ids: Collection[uuid.UUID] | None = None,
) -> int:
    """Claim one batch of due emails and try each once; the number claimed."""
    claim = await claim_batch(db, settings, worker_id=worker_id, only_ids=only_ids)
    if not claim.emails:
        return 0
    own_sender = sender is None
    active = sender or create_sender(settings)
    lease = float(settings.WORKER_LEASE_SECONDS)
    margin = timedelta(seconds=min(lease / 2, active.timeout_seconds))
    try:
        for index, email in enumerate(claim.emails):
            if clock.now() + margin >= claim.locked_until:
                await release(db, claim.emails[index:], claim.token)
                logger.info("outbox batch handed back emails it had no time left to send")
                break
            try:
                async with asyncio.timeout(active.timeout_seconds):
                    provider_id = await active.send(build_message(email, settings))
            except DeliveryError as exc:
                await mark_failed_attempt(db, email, claim.token, exc, settings)
            except TimeoutError:
                error = DeliveryError(f"{active.name} send timed out")
                await mark_failed_attempt(db, email, claim.token, error, settings)
            else:
                await mark_sent(db, email, claim.token, provider_id)
    finally:
        if own_sender:
            await active.aclose()
    return len(claim.emails)


async def purge_finished(db: SessionSource, settings: Settings) -> int:
    """Delete sent and failed emails older than EMAIL_RETENTION_DAYS."""
    from sqlalchemy import delete

    cutoff = clock.now() - timedelta(days=settings.EMAIL_RETENTION_DAYS)
    async with transaction(db) as session:
        result = await session.execute(
            delete(OutboxEmail)
            .where(
                OutboxEmail.status.in_([EmailStatus.sent, EmailStatus.failed]),
                OutboxEmail.updated_at < cutoff,
            )
            .execution_options(synchronize_session=False)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]
