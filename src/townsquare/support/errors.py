"""Errors of the support chat, each with its HTTP status and stable `code`."""

from __future__ import annotations

from townsquare.errors import Conflict, Forbidden, NotFound
from townsquare.media.errors import UnsupportedFileType


class ConversationNotFound(NotFound):
    code = "conversation_not_found"
    detail = "No such conversation."


class CannedResponseNotFound(NotFound):
    code = "canned_response_not_found"
    detail = "No such canned response."


class AgentsOnly(Forbidden):
    code = "agents_only"
    detail = "Only the organization's support agents may do this."


class OnlyTheCustomerRates(Forbidden):
    code = "only_the_customer_rates"
    detail = "Only the customer who opened the conversation may rate it."


class EmailNotVerified(Forbidden):
    code = "email_not_verified"
    detail = "Verify your email address before opening a support conversation."


class ConversationClosed(Conflict):
    code = "conversation_closed"
    title = "Conversation closed"
    detail = "This conversation is closed; nobody writes to it any more. Open a new one."


class InvalidStatusTransition(Conflict):
    code = "invalid_status_transition"
    title = "Invalid status transition"
    detail = "The conversation's status does not allow this change."


class ConversationNotResolved(Conflict):
    code = "conversation_not_resolved"
    detail = "Only a resolved conversation can be rated."


class AlreadyRated(Conflict):
    code = "already_rated"
    detail = "This conversation has been rated already; a rating is given once."


class ShortCodeTaken(Conflict):
    code = "short_code_taken"
    title = "Short code taken"
    detail = "Another canned response of this organization already uses this short code."


class AttachmentTypeNotAccepted(UnsupportedFileType):
    detail = (
        "Attachments are JPEG, PNG, GIF, WebP or AVIF images or PDF files whose content, "
        "declared type and extension agree."
    )
