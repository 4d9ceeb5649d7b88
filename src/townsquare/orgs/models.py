"""Organizations, their members, enabled modules, invitations and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from townsquare.db import Base, Model, enum_column
from townsquare.kit import clock
from townsquare.orgs.enums import InvitationStatus, MemberRole, Module

NAME_MAX = 100
SLUG_MAX = 64
AVATAR_URL_MAX = 2048
TIMEZONE_MAX = 64
EMAIL_MAX = 320
TOKEN_HASH_MAX = 64


class Organization(Model):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(NAME_MAX))
    slug: Mapped[str] = mapped_column(String(SLUG_MAX), unique=True)
    avatar_url: Mapped[str | None] = mapped_column(String(AVATAR_URL_MAX))
    timezone: Mapped[str] = mapped_column(String(TIMEZONE_MAX))

    modules: Mapped[list[OrganizationModule]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )


class OrganizationModule(Base):
    __tablename__ = "organization_modules"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    module: Mapped[Module] = mapped_column(enum_column(Module, "module"), primary_key=True)


class Membership(Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[MemberRole] = mapped_column(enum_column(MemberRole, "member_role"))


class AuditLogEntry(Base):
    """Append-only: who did what to what, written in the transaction that did it."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "organization_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Invitation(Model):
    """An invitation by email. Only the token's hash is kept; `expired` is also derived from
    `expires_at` (a stored `pending` row past its expiry reads as expired)."""

    __tablename__ = "invitations"
    __table_args__ = (
        Index(None, "organization_id", "status", "created_at"),
        # One live invitation per address and organization, also under concurrent invites.
        Index(
            "uq_invitations_pending_email",
            "organization_id",
            "email",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    email: Mapped[str] = mapped_column(String(EMAIL_MAX))
    role: Mapped[MemberRole] = mapped_column(enum_column(MemberRole, "member_role"))
    status: Mapped[InvitationStatus] = mapped_column(
        enum_column(InvitationStatus, "invitation_status"), default=InvitationStatus.pending
    )
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_MAX), unique=True)
    expires_at: Mapped[datetime]
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    accepted_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    def effective_status(self, at: datetime) -> InvitationStatus:
        """The status a caller sees: a pending invitation past `expires_at` is expired."""
        if self.status == InvitationStatus.pending and self.expires_at <= at:
            return InvitationStatus.expired
        return self.status
