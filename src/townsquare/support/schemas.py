"""Request and response types of the support chat.

What a response shows depends on who asks: customers get conversations and messages with
internal notes taken out (`last_seq`, `last_activity_at` and `unread_count` as if the notes
had never been written); agents get everything.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from townsquare.kit.fields import PlainText, RequestBody, SingleLine, Slug, not_null
from townsquare.support.enums import (
    ChatMessageType,
    ChatParticipantRole,
    ConversationStatus,
    SystemEvent,
)
from townsquare.support.models import (
    BODY_MAX,
    CANNED_TEXT_MAX,
    CAPTION_MAX,
    CLIENT_MSG_ID_MAX,
    RATING_COMMENT_MAX,
    SHORT_CODE_MAX,
    SUBJECT_MAX,
)

MESSAGES_PER_PAGE = 50
MAX_MESSAGES_PER_PAGE = 200
CONVERSATIONS_PER_PAGE = 20
MAX_CONVERSATIONS_PER_PAGE = 100


def _not_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


Subject = Annotated[str, SingleLine(SUBJECT_MAX)]
MessageBody = Annotated[str, PlainText(BODY_MAX), AfterValidator(_not_blank)]
CannedText = Annotated[str, PlainText(CANNED_TEXT_MAX), AfterValidator(_not_blank)]
ShortCode = Annotated[str, Slug(SHORT_CODE_MAX)]
RatingComment = Annotated[str, PlainText(RATING_COMMENT_MAX)]
Caption = Annotated[str, PlainText(CAPTION_MAX)]
ClientMsgId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=CLIENT_MSG_ID_MAX, pattern=r"^[A-Za-z0-9._:-]+$"),
]
"""A sender's own id for a message (a UUID is fine): a retry with it answers the original."""


# --- requests ------------------------------------------------------------------------------


class ConversationCreate(RequestBody):
    subject: Subject
    body: MessageBody = Field(description="The first message (seq 1).")
    client_msg_id: ClientMsgId | None = Field(
        default=None,
        description="A retry with the same id by the same customer in this organization "
        "answers 200 with the conversation it opened.",
    )


class MessageCreate(RequestBody):
    body: MessageBody
    internal: bool = Field(
        default=False,
        description="An agents' note, never shown to the customer. Only agents may set it "
        "(a customer gets 403 `agents_only`).",
    )
    client_msg_id: ClientMsgId | None = Field(
        default=None,
        description="A retry with an id this sender used in this conversation answers 200 "
        "with the original message.",
    )


class AttachmentFields(RequestBody):
    """The text fields of an attachment upload, beside its `file`. There is no `internal`:
    attachments are always seen by both sides."""

    body: Caption = Field(default="", description="An optional caption.")
    client_msg_id: ClientMsgId | None = Field(
        default=None,
        description="A retry with an id this sender used in this conversation answers 200 "
        "with the original message (and keeps nothing of the new file).",
    )


class ReadCursorUpdate(RequestBody):
    seq: int = Field(
        ge=0,
        le=2**31 - 1,
        description="The newest seq the caller has read. The cursor only moves forward, and a "
        "seq beyond what the caller can see is lowered to the newest one they can.",
    )


class Assignment(RequestBody):
    assignee_id: uuid.UUID | None = Field(
        description="A member whose role has `support:inbox`, or null to unassign."
    )


class RatingCreate(RequestBody):
    rating: int = Field(ge=1, le=5)
    comment: RatingComment | None = None


class CannedResponseCreate(RequestBody):
    short_code: ShortCode = Field(description="Unique in the organization, like `refund-policy`.")
    text: CannedText


class CannedResponseUpdate(RequestBody):
    short_code: ShortCode | None = None
    text: CannedText | None = None

    _required = not_null("short_code", "text")


# --- responses -----------------------------------------------------------------------------


class Person(BaseModel):
    id: uuid.UUID
    display_name: str


class Sender(Person):
    role: ChatParticipantRole


class MessageAttachment(BaseModel):
    filename: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    url: str | None = Field(
        default=None,
        description="A short-lived download URL (`MEDIA_URL_TTL_SECONDS`), given to the "
        "conversation's customer and the organization's agents; images and PDF open inline.",
    )
    url_expires_at: datetime | None = Field(
        default=None,
        description="When `url` stops working; fetch the messages again for a new one.",
    )


class Message(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int = Field(description="Position in the conversation: one order for every reader.")
    type: ChatMessageType
    system_event: SystemEvent | None = Field(
        description="What a `system` message announces (null for other types)."
    )
    sender: Sender | None
    body: str
    internal: bool
    attachment: MessageAttachment | None
    client_msg_id: str | None
    created_at: datetime


class MessagePage(BaseModel):
    """Messages in ascending seq order."""

    items: list[Message]
    next_cursor: int | None = Field(
        description="The seq to send as `after_seq` (when paging forwards) or `before_seq` "
        "(paging backwards, or from the newest page) for the next page; null when there is none."
    )


class ConversationState(BaseModel):
    """A conversation as the receiver may see it, without anything personal to one reader:
    the body of `conversation.updated` events."""

    id: uuid.UUID
    organization_id: uuid.UUID
    subject: str
    status: ConversationStatus
    customer: Person
    assignee: Person | None
    last_seq: int = Field(description="The newest seq the caller can see.")
    last_activity_at: datetime = Field(
        description="When the newest message the caller can see came."
    )
    created_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    rating: int | None
    rating_comment: str | None
    rated_at: datetime | None


class Conversation(ConversationState):
    last_read_seq: int = Field(description="The caller's own read cursor.")
    unread_count: int = Field(
        description="Messages after the caller's read cursor that others wrote (for a "
        "customer, internal notes never count)."
    )


class ConversationPage(BaseModel):
    """Newest activity first; pass `next_cursor` as `?cursor=` for the next page."""

    items: list[Conversation]
    next_cursor: str | None


class ReadCursor(BaseModel):
    conversation_id: uuid.UUID
    user_id: uuid.UUID
    last_read_seq: int
    unread_count: int


class CannedResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    short_code: str
    text: str
    created_at: datetime
    updated_at: datetime


class SupportStats(BaseModel):
    """Figures of the days `from`..`to` (both included, in the organization's time zone)."""

    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    opened: int = Field(description="Conversations opened in the range.")
    resolved: int = Field(description="Conversations resolved in the range (and not reopened).")
    median_first_response_seconds: float | None = Field(
        description="Of conversations opened in the range: from opening to an agent's first reply."
    )
    median_resolution_seconds: float | None = Field(
        description="Of conversations resolved in the range: from opening to resolution."
    )
    rating_average: float | None
    rating_count: int

    model_config = ConfigDict(populate_by_name=True)
