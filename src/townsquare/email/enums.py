from __future__ import annotations

from enum import StrEnum


class EmailStatus(StrEnum):
    """Where an outbox email stands. `sending` rows are leased to one worker."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
