"""What `townsquare email ...` does (the CLI only parses arguments and prints)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from townsquare.config import Settings
from townsquare.db import Database, transaction
from townsquare.email import delivery
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail
from townsquare.email.service import enqueue_email
from townsquare.worker.runner import new_worker_id


@dataclass(frozen=True)
class SendTestResult:
    message_id: str
    status: EmailStatus
    provider_message_id: str | None
    last_error: str | None


async def send_test(settings: Settings, address: str, *, deliver: bool = True) -> SendTestResult:
    """Enqueue the `test` email to `address` and, with `deliver`, send it right away through
    the configured backend (a failure is retried by the worker like any other email)."""
    database = Database(settings)
    try:
        async with transaction(database) as session:
            email = await enqueue_email(
                session,
                to=address,
                template="test",
                context={"sent_by": "townsquare email send-test"},
                settings=settings,
            )
        if deliver:
            await delivery.deliver_batch(
                database, settings, worker_id=new_worker_id(), only_ids=[email.id]
            )
        async with transaction(database, write=False) as session:
            row = await session.scalar(select(OutboxEmail).where(OutboxEmail.id == email.id))
            assert row is not None
            return SendTestResult(
                message_id=row.message_id,
                status=row.status,
                provider_message_id=row.provider_message_id,
                last_error=row.last_error,
            )
    finally:
        await database.dispose()
