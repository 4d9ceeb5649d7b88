"""The outbox: emails are rows written in the caller's transaction, delivered by a duty."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from email.utils import parseaddr
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.config import Settings, get_settings
from townsquare.db import after_commit
from townsquare.email.addresses import InvalidEmailAddress, normalize_address
from townsquare.email.enums import EmailStatus
from townsquare.email.models import SUBJECT_MAX, OutboxEmail
from townsquare.email.templates import render_email
from townsquare.kit import clock
from townsquare.worker.signals import notify_workers, request_wakeup

DELIVER_DUTY = "email.deliver"

__all__ = [
    "DELIVER_DUTY",
    "InvalidEmailAddress",
    "enqueue_email",
    "message_id_domain",
    "normalize_address",
]


def message_id_domain(settings: Settings) -> str:
    """The right-hand side of our Message-IDs: the domain of EMAIL_FROM."""
    _, address = parseaddr(settings.EMAIL_FROM)
    domain = address.rpartition("@")[2].strip().lower()
    return domain or "townsquare.localhost"


async def enqueue_email(
    session: AsyncSession,
    *,
    to: str,
    template: str,
    context: Mapping[str, Any],
    settings: Settings | None = None,
) -> OutboxEmail:
    """Render `template` (see `townsquare.email.templates`) for `to` and add it to the outbox
    in the caller's transaction (flushed, not committed); workers are woken after commit.

    A rolled-back transaction leaves no email behind. `settings` only chooses the domain of
    the Message-ID (default: the process settings).
    """
    address = normalize_address(to)
    rendered = render_email(template, context)
    email_id = uuid.uuid4()
    domain = message_id_domain(settings or get_settings())
    email = OutboxEmail(
        id=email_id,
        to_address=address,
        subject=rendered.subject[:SUBJECT_MAX],
        text_body=rendered.text_body,
        html_body=rendered.html_body,
        template=template,
        status=EmailStatus.pending,
        attempts=0,
        next_attempt_at=clock.now(),
        message_id=f"<{email_id.hex}@{domain}>",
    )
    session.add(email)
    await session.flush()
    after_commit(session, partial(request_wakeup, DELIVER_DUTY))
    await notify_workers(session, DELIVER_DUTY)
    return email
