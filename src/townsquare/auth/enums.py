"""Enumerations of the identity domain."""

from __future__ import annotations

from enum import StrEnum


class TokenPurpose(StrEnum):
    """What a one-time emailed token is for."""

    verify_email = "verify_email"
    password_reset = "password_reset"
    change_email = "change_email"
    """Sent to the new address of an email change; `UserToken.email` is that new address."""
