"""Tables of the support chat.

A conversation's messages are numbered by `seq` (1, 2, 3... per conversation) under the
conversation's row lock, so every reader sees one order with no gaps. Internal notes take
seqs in the same sequence; customers simply never see those seqs.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.db import Model, enum_column
from townsquare.support.enums import (
    ChatMessageType,
    ChatParticipantRole,
    ConversationStatus,
    SystemEvent,
)

SUBJECT_MAX = 200
BODY_MAX = 10_000
CAPTION_MAX = 1_000
"""An attachment's caption travels as a form field (at most 4 KiB of UTF-8)."""
CLIENT_MSG_ID_MAX = 64
SHORT_CODE_MAX = 32
CANNED_TEXT_MAX = 5_000
RATING_COMMENT_MAX = 2_000
FILENAME_MAX = 255
KEY_MAX = 300


class Conversation(Model):
    __tablename__ = "conversations"
    # The inbox lists page by (last activity, id) within each filter; explicit names keep
    # the longest ones under PostgreSQL's 63 characters.
    __table_args__ = (
        UniqueConstraint("organization_id", "customer_id", "client_msg_id"),
        Index("ix_conversations_inbox", "organization_id", "last_activity_at", "id"),
        Index(
            "ix_conversations_inbox_status",
            "organization_id",
            "status",
            "last_activity_at",
            "id",
        ),
        Index(
            "ix_conversations_inbox_assignee",
            "organization_id",
            "assignee_id",
            "last_activity_at",
            "id",
        ),
        Index("ix_conversations_customer", "customer_id", "last_public_activity_at", "id"),
        Index(None, "organization_id", "created_at"),
        Index(None, "organization_id", "resolved_at"),
        Index(None, "organization_id", "rated_at"),
        Index(None, "notice_due_at"),
        Index(None, "status", "last_agent_message_at"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX))
    status: Mapped[ConversationStatus] = mapped_column(
        enum_column(ConversationStatus, "conversation_status"), default=ConversationStatus.open
    )
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    """The newest seq of any message, internal notes included."""
    last_public_seq: Mapped[int] = mapped_column(Integer, default=0)
    """The newest seq a customer can see (no internal notes)."""
    client_msg_id: Mapped[str | None] = mapped_column(String(CLIENT_MSG_ID_MAX))
    """The opening message's `client_msg_id`: a retried open finds its conversation."""
    last_activity_at: Mapped[datetime] = mapped_column()
    last_public_activity_at: Mapped[datetime] = mapped_column()
    """The newest message a customer can see: their lists order by it, so that an internal
    note never moves a conversation in a customer's list."""
    last_customer_message_at: Mapped[datetime | None] = mapped_column()
    last_agent_message_at: Mapped[datetime | None] = mapped_column()
    """An agent's newest public reply (notes aside): auto-resolve waits from it."""
    first_response_at: Mapped[datetime | None] = mapped_column()
    """When an agent first replied to the customer (not a note): first-response time."""
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column()
    notice_due_at: Mapped[datetime | None] = mapped_column()
    """When to email the customer the agent replies they have not read (None: nothing due)."""
    notice_sent_seq: Mapped[int] = mapped_column(Integer, default=0)
    """Replies up to this seq were in an email notice already."""


class ChatParticipant(Model):
    """Someone in a conversation with their own read cursor: the customer, assigned agents,
    and every agent who read it."""

    __tablename__ = "chat_participants"
    __table_args__ = (
        UniqueConstraint("conversation_id", "user_id"),
        Index(None, "user_id"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[ChatParticipantRole] = mapped_column(
        enum_column(ChatParticipantRole, "chat_participant_role")
    )
    last_read_seq: Mapped[int] = mapped_column(Integer, default=0)


class ChatMessage(Model):
    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        UniqueConstraint("conversation_id", "sender_id", "client_msg_id"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    sender_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sender_role: Mapped[ChatParticipantRole | None] = mapped_column(
        enum_column(ChatParticipantRole, "chat_participant_role")
    )
    type: Mapped[ChatMessageType] = mapped_column(enum_column(ChatMessageType, "chat_message_type"))
    system_event: Mapped[SystemEvent | None] = mapped_column(
        enum_column(SystemEvent, "chat_system_event")
    )
    """What a `system` message announces, for clients that word it themselves."""
    body: Mapped[str] = mapped_column(Text, default="")
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    client_msg_id: Mapped[str | None] = mapped_column(String(CLIENT_MSG_ID_MAX))
    attachment_key: Mapped[str | None] = mapped_column(String(KEY_MAX))
    attachment_filename: Mapped[str | None] = mapped_column(String(FILENAME_MAX))
    attachment_content_type: Mapped[str | None] = mapped_column(String(100))
    attachment_size: Mapped[int | None] = mapped_column(BigInteger)
    attachment_width: Mapped[int | None] = mapped_column(Integer)
    attachment_height: Mapped[int | None] = mapped_column(Integer)


class CannedResponse(Model):
    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("organization_id", "short_code"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    short_code: Mapped[str] = mapped_column(String(SHORT_CODE_MAX))
    text: Mapped[str] = mapped_column(Text)
