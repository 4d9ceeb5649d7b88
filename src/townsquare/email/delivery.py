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
import email.policy
import logging
import random
import uuid
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, bindparam, or_, select, update

from townsquare.config import Settings
from townsquare.db import SessionSource, transaction
from townsquare.email.addresses import delivery_address
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


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, but building each header class once: the stock one
    creates a new class for every header of every message (a third of the build time)."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        header_class = self._classes.get(key)
        if header_class is None:
            header_class = self._classes[key] = super().__getitem__(name)
        return header_class


MESSAGE_POLICY = email.policy.default.clone(header_factory=_HeaderClasses())
# A non-ASCII local part cannot be encoded in a header: such messages are written in UTF-8
# (RFC 6532) and go out with SMTPUTF8.
UTF8_MESSAGE_POLICY = MESSAGE_POLICY.clone(utf8=True)


def build_message(email: ClaimedEmail, settings: Settings) -> EmailMessage:
    """The MIME message: text, plus HTML as multipart/alternative when there is one."""
    to = delivery_address(email.to_address)
    message = EmailMessage(policy=MESSAGE_POLICY if to.isascii() else UTF8_MESSAGE_POLICY)
    message["From"] = settings.EMAIL_FROM
    message["To"] = to
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


def _due(now: datetime) -> ColumnElement[bool]:
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
            .where(_due(now))
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


Outcome = str | DeliveryError
"""What one attempt gave: the provider's message id, or why it failed."""


# Outcome statements, built once: each applies only while the batch still holds the lease.
_LEASE_HELD = and_(
    OutboxEmail.id == bindparam("b_id"),
    OutboxEmail.locked_by == bindparam("b_token"),
    OutboxEmail.status == EmailStatus.sending,
)
# In development the console's mailbox (`/dev/mail`) shows sent emails, links included.
_RECORD_SENT_KEEPING_BODY = (
    update(OutboxEmail)
    .where(_LEASE_HELD)
    .values(
        status=EmailStatus.sent,
        sent_at=bindparam("b_now"),
        provider_message_id=bindparam("b_provider_id"),
        last_error=None,
        locked_until=None,
        locked_by=None,
    )
)
# The bodies may hold one-time links (verification, reset): they leave with the email.
_RECORD_SENT = _RECORD_SENT_KEEPING_BODY.values(text_body="", html_body=None)
_RECORD_FAILED = (
    update(OutboxEmail)
    .where(_LEASE_HELD)
    .values(
        status=EmailStatus.failed,
        last_error=bindparam("b_error"),
        text_body="",
        html_body=None,
        locked_until=None,
        locked_by=None,
    )
)
_RECORD_RETRY = (
    update(OutboxEmail)
    .where(_LEASE_HELD)
    .values(
        status=EmailStatus.pending,
        last_error=bindparam("b_error"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        locked_until=None,
        locked_by=None,
    )
)


def _outcome_statement(
    email: ClaimedEmail, outcome: Outcome, settings: Settings
) -> tuple[Update, dict[str, Any]]:
    now = clock.now()
    if not isinstance(outcome, DeliveryError):
        sent = _RECORD_SENT_KEEPING_BODY if settings.dev_mailbox else _RECORD_SENT
        return sent, {"b_now": now, "b_provider_id": outcome[:MESSAGE_ID_MAX]}
    reason = redact(outcome.reason, settings)
    if outcome.permanent or email.attempts >= settings.EMAIL_MAX_ATTEMPTS:
        logger.warning(
            "outbox email failed for good",
            extra={"email_id": str(email.id), "attempts": email.attempts, "error": reason},
        )
        return _RECORD_FAILED, {"b_error": reason}
    delay = retry_delay(email.attempts, settings)
    logger.info(
        "outbox email delivery failed; will retry",
        extra={"email_id": str(email.id), "attempts": email.attempts, "retry_in": round(delay)},
    )
    return _RECORD_RETRY, {"b_error": reason, "b_next_attempt_at": now + timedelta(seconds=delay)}


async def record_outcomes(
    db: SessionSource,
    settings: Settings,
    token: str,
    outcomes: Sequence[tuple[ClaimedEmail, Outcome]],
) -> list[bool]:
    """Record attempts in one transaction, each only if the batch `token` still holds the
    email's lease; for each, whether it was recorded."""
    recorded: list[bool] = []
    async with transaction(db) as session:
        connection = await session.connection()
        for email, outcome in outcomes:
            statement, params = _outcome_statement(email, outcome, settings)
            result = await connection.execute(
                statement, {"b_id": email.id, "b_token": token, **params}
            )
            recorded.append(result.rowcount == 1)
    for (email, _), ok in zip(outcomes, recorded, strict=True):
        if not ok:
            logger.warning(
                "outbox email lease lost before its outcome was recorded",
                extra={"email_id": str(email.id)},
            )
    return recorded


class _Recorder:
    """Records outcomes for the lanes of a batch, grouping those that arrive together
    into one transaction. `add` returns once the outcome is durable, so a lane never has
    more than one sent-but-unrecorded email (what a crash could deliver twice)."""

    def __init__(self, db: SessionSource, settings: Settings, token: str) -> None:
        self.db = db
        self.settings = settings
        self.token = token
        self.waiting: list[tuple[ClaimedEmail, Outcome]] = []
        self.lock = asyncio.Lock()

    async def add(self, email: ClaimedEmail, outcome: Outcome) -> None:
        self.waiting.append((email, outcome))
        async with self.lock:
            # The lock is fair: whoever held it before us took our outcome or left it here.
            group, self.waiting = self.waiting, []
            if group:
                await record_outcomes(self.db, self.settings, self.token, group)


async def _attempt(sender: EmailSender, email: ClaimedEmail, settings: Settings) -> Outcome:
    try:
        async with asyncio.timeout(sender.timeout_seconds):
            return await sender.send(build_message(email, settings))
    except DeliveryError as exc:
        return exc
    except TimeoutError:
        return DeliveryError(f"{sender.name} send timed out")
    except Exception as exc:
        logger.exception(
            "unexpected error while sending an email", extra={"email_id": str(email.id)}
        )
        return DeliveryError(f"unexpected {type(exc).__name__}")


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
    """Claim one batch of due emails and try each once, EMAIL_SEND_CONCURRENCY at a time
    (one connection each); the number claimed."""
    claim = await claim_batch(db, settings, worker_id=worker_id, only_ids=only_ids)
    if not claim.emails:
        return 0
    queue = deque(claim.emails)
    lanes = max(1, min(settings.EMAIL_SEND_CONCURRENCY, len(queue)))
    senders = (
        [sender] * lanes if sender is not None else [create_sender(settings) for _ in range(lanes)]
    )
    recorder = _Recorder(db, settings, claim.token)
    lease = float(settings.WORKER_LEASE_SECONDS)
    margin = timedelta(seconds=min(lease / 2, senders[0].timeout_seconds))

    async def lane(lane_sender: EmailSender) -> None:
        while queue:
            if clock.now() + margin >= claim.locked_until:
                return  # no time left in the lease: what is left goes back
            email = queue.popleft()
            await recorder.add(email, await _attempt(lane_sender, email, settings))

    try:
        async with asyncio.TaskGroup() as group:
            for lane_sender in senders:
                group.create_task(lane(lane_sender))
    finally:
        if sender is None:
            for own in senders:
                await own.aclose()
    if queue:
        logger.info("outbox batch handed back emails it had no time left to send")
        await release(db, list(queue), claim.token)
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
