"""Tables of events, their shifts and the volunteers' signups.

Capacity is exact because every change to a shift's confirmed signups happens under the
shift's row lock (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite write transactions are
`BEGIN IMMEDIATE`), and `shifts.confirmed_count` is kept in step in the same transaction.
`shifts.waitlist_seq` hands out the ordering numbers of the waiting list under that lock;
a waitlisted signup's position is its rank among the shift's waitlisted signups.

`shifts.sequence` grows by one whenever what a calendar shows of a shift changes (its
time, its location or the event's, cancellation), so calendar feeds can carry it as
`SEQUENCE`. A shift is cancelled when `cancelled_at` is set; cancelling an event sets it on
every shift of the event too.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.db import Model, enum_column
from townsquare.events.enums import EventStatus, SignupStatus
from townsquare.kit.fields import TIMEZONE_MAX

TITLE_MAX = 200
LOCATION_MAX = 300
DESCRIPTION_MAX = 100_000
SHIFT_DESCRIPTION_MAX = 5_000
CAPACITY_MAX = 100_000

_ACTIVE_SIGNUP = text("status IN ('confirmed', 'waitlisted')")


class Event(Model):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_listing", "organization_id", "starts_at", "id"),
        Index("ix_events_public_listing", "organization_id", "status", "starts_at", "id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    description: Mapped[str] = mapped_column(Text, default="")
    """Sanitized HTML, like an article's body."""
    location: Mapped[str | None] = mapped_column(String(LOCATION_MAX))
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    timezone: Mapped[str] = mapped_column(String(TIMEZONE_MAX))
    """IANA name; the org's when the event was created without one."""
    status: Mapped[EventStatus] = mapped_column(
        enum_column(EventStatus, "event_status"), default=EventStatus.draft
    )
    published_at: Mapped[datetime | None] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column()
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class Shift(Model):
    __tablename__ = "shifts"
    __table_args__ = (
        Index(None, "event_id", "starts_at"),
        Index(None, "starts_at"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    description: Mapped[str] = mapped_column(Text, default="")
    """Plain text."""
    location: Mapped[str | None] = mapped_column(String(LOCATION_MAX))
    """Where the shift happens when it is not the event's location (None: the event's)."""
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    capacity: Mapped[int] = mapped_column(Integer)
    confirmed_count: Mapped[int] = mapped_column(Integer, default=0)
    """Signups in status `confirmed`, changed only under the shift's row lock."""
    waitlist_seq: Mapped[int] = mapped_column(Integer, default=0)
    """The last ordering number handed to a waitlisted signup of this shift."""
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    """Grows when the shift's time, location (or its event's) or cancellation changes."""
    cancelled_at: Mapped[datetime | None] = mapped_column()

    @property
    def free_places(self) -> int:
        return max(self.capacity - self.confirmed_count, 0)


class Signup(Model):
    """A person on a shift. One active (confirmed or waitlisted) signup per person per shift;
    a cancelled one stays, and the person may sign up again."""

    __tablename__ = "signups"
    __table_args__ = (
        Index(
            "uq_signups_active",
            "shift_id",
            "user_id",
            unique=True,
            postgresql_where=_ACTIVE_SIGNUP,
            sqlite_where=_ACTIVE_SIGNUP,
        ),
        Index("ix_signups_waitlist", "shift_id", "status", "waitlist_order"),
        Index(None, "user_id", "status"),
        Index(None, "organization_id", "user_id", "status"),
        # The reminder sweep: confirmed signups not reminded yet.
        Index(
            "ix_signups_reminder_due",
            "shift_id",
            postgresql_where=text("status = 'confirmed' AND reminder_sent_at IS NULL"),
            sqlite_where=text("status = 'confirmed' AND reminder_sent_at IS NULL"),
        ),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    shift_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[SignupStatus] = mapped_column(enum_column(SignupStatus, "signup_status"))
    waitlist_order: Mapped[int | None] = mapped_column(Integer)
    """Ordering on the shift's waiting list (from `shifts.waitlist_seq`); kept after a
    promotion. The position shown is the rank among the shift's waitlisted signups."""
    confirmed_at: Mapped[datetime | None] = mapped_column()
    """When the place became theirs: at signup, or when promoted from the waiting list."""
    promoted_at: Mapped[datetime | None] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column()
    cancelled_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    no_show_at: Mapped[datetime | None] = mapped_column()
    reminder_sent_at: Mapped[datetime | None] = mapped_column()
    """Set by the reminder duty when it queued this signup's reminder (once)."""
