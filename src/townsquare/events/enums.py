"""Enumerations of events and shifts."""

from __future__ import annotations

from enum import StrEnum


class EventStatus(StrEnum):
    draft = "draft"
    """Seen by managers only; nobody signs up."""
    published = "published"
    cancelled = "cancelled"
    """Final for its shifts: every signup was told, nobody signs up any more."""


class SignupStatus(StrEnum):
    confirmed = "confirmed"
    waitlisted = "waitlisted"
    cancelled = "cancelled"
    no_show = "no_show"
    """Confirmed, but did not come (marked by a manager after the start)."""


ACTIVE_SIGNUP_STATUSES = (SignupStatus.confirmed, SignupStatus.waitlisted)
"""A person holds at most one signup in these statuses per shift."""
