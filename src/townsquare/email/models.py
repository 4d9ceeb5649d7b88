"""The email outbox: one row per email, written in the transaction that caused it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Enum, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.db import Model
from townsquare.email.enums import EmailStatus
from townsquare.kit import clock

ADDRESS_MAX = 320
SUBJECT_MAX = 998
TEMPLATE_MAX = 100
MESSAGE_ID_MAX = 255
WORKER_ID_MAX = 120
ERROR_MAX = 1000


class OutboxEmail(Model):
    """An email to deliver. Bodies are cleared once it is sent or has failed for good."""

    __tablename__ = "email_outbox"
    __table_args__ = (
        # The claim query: pending rows that are due, and leases that ran out.
        Index(
            "ix_email_outbox_pending_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_email_outbox_sending_lease",
            "locked_until",
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
        Index("ix_email_outbox_status_updated_at", "status", "updated_at"),
    )

    to_address: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(TEMPLATE_MAX))
    status: Mapped[EmailStatus] = mapped_column(
        Enum(EmailStatus, name="email_status", native_enum=False, length=16, validate_strings=True),
        default=EmailStatus.pending,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=clock.now)
    locked_until: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(WORKER_ID_MAX))
    last_error: Mapped[str | None] = mapped_column(String(ERROR_MAX))
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_MAX), unique=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(MESSAGE_ID_MAX))
    sent_at: Mapped[datetime | None]
