"""The shape of `GET /me/export`: what Townsquare holds about the signed-in person."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

FORMAT = "townsquare-export/1"


class OrganizationRef(BaseModel):
    id: uuid.UUID
    slug: str
    name: str


class ExportedProfile(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    timezone: str
    avatar_url: str | None
    is_staff: bool
    email_verified_at: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ExportedMembership(BaseModel):
    organization: OrganizationRef
    role: str
    joined_at: datetime


class ExportedSession(BaseModel):
    """A live sign-in (its token exists only in that client's cookie)."""

    id: uuid.UUID
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool


class ExportedArticle(BaseModel):
    id: uuid.UUID
    organization: OrganizationRef
    title: str
    status: str
    created_at: datetime
    published_at: datetime | None


class ExportedConversation(BaseModel):
    """A support conversation the person opened."""

    id: uuid.UUID
    organization: OrganizationRef
    subject: str
    status: str
    rating: int | None
    rating_comment: str | None
    created_at: datetime
    resolved_at: datetime | None


class ExportedMessage(BaseModel):
    """A chat message the person sent (as a customer or as an agent; never a note)."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    organization: OrganizationRef
    type: str
    body: str
    attachment_filename: str | None
    created_at: datetime


class ExportedMedia(BaseModel):
    id: uuid.UUID
    organization: OrganizationRef
    filename: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    alt: str
    title: str
    status: str
    created_at: datetime


class ExportedSignup(BaseModel):
    """A shift the person signed up for (any status)."""

    id: uuid.UUID
    organization: OrganizationRef
    event_id: uuid.UUID
    event_title: str
    shift_id: uuid.UUID
    shift_title: str
    starts_at: datetime
    ends_at: datetime
    status: str
    created_at: datetime


class ExportedInvitation(BaseModel):
    id: uuid.UUID
    organization: OrganizationRef
    role: str
    status: str
    created_at: datetime
    expires_at: datetime


class ExportedAuditEntry(BaseModel):
    """An entry the person is the actor or the subject of."""

    id: uuid.UUID
    organization: OrganizationRef
    action: str
    actor_id: uuid.UUID | None
    target_type: str | None
    target_id: str | None
    data: dict[str, Any]
    created_at: datetime


class AccountExport(BaseModel):
    format: str = FORMAT
    exported_at: datetime
    profile: ExportedProfile
    memberships: list[ExportedMembership]
    sessions: list[ExportedSession]
    articles: list[ExportedArticle]
    conversations: list[ExportedConversation]
    messages: list[ExportedMessage]
    media: list[ExportedMedia]
    signups: list[ExportedSignup]
    invitations: list[ExportedInvitation]
    audit_log: list[ExportedAuditEntry]
