"""Enumerations of the support chat."""

from __future__ import annotations

from enum import StrEnum


class ConversationStatus(StrEnum):
    open = "open"
    assigned = "assigned"
    resolved = "resolved"
    closed = "closed"
    """Final: nobody writes to a closed conversation."""


class ChatParticipantRole(StrEnum):
    customer = "customer"
    agent = "agent"


class ChatMessageType(StrEnum):
    text = "text"
    system = "system"
    """Written by Townsquare for a status change or an assignment; seen by both sides."""
    attachment = "attachment"


class SystemEvent(StrEnum):
    """What a `system` message announces."""

    assigned = "assigned"
    unassigned = "unassigned"
    resolved = "resolved"
    closed = "closed"
    reopened = "reopened"
