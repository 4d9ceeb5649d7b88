"""Request and response types of events, shifts and signups."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from townsquare.events.enums import EventStatus, SignupStatus
from townsquare.events.models import (
    CAPACITY_MAX,
    DESCRIPTION_MAX,
    LOCATION_MAX,
    SHIFT_DESCRIPTION_MAX,
    TITLE_MAX,
)
from townsquare.kit.fields import PlainText, RequestBody, SingleLine, Timezone, not_null

MAX_SHIFTS_PER_BATCH = 100

Title = Annotated[str, SingleLine(TITLE_MAX)]
Location = Annotated[str, SingleLine(LOCATION_MAX)]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX)]
ShiftDescription = Annotated[str, PlainText(SHIFT_DESCRIPTION_MAX)]
Capacity = Annotated[int, Field(ge=1, le=CAPACITY_MAX)]


# --- events ----------------------------------------------------------------------------------


class EventCreate(RequestBody):
    title: Title
    description: Description = Field(default="", description="HTML; sanitized on write.")
    location: Location | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime = Field(description="After `starts_at` (422 `invalid_time_range`).")
    timezone: Timezone | None = Field(
        default=None, description="IANA name; the organization's when left out."
    )
    status: EventStatus = Field(
        default=EventStatus.draft, description="`draft` (the default) or `published`."
    )


class EventUpdate(RequestBody):
    """Only the fields sent change; `null` clears `location` and is refused for the others.
    Moving both times by the same amount moves every shift with the event; otherwise the
    shifts must stay inside. `status: cancelled` cancels the event and every shift."""

    title: Title | None = None
    description: Description | None = None
    location: Location | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    timezone: Timezone | None = None
    status: EventStatus | None = None

    _required = not_null("title", "description", "starts_at", "ends_at", "timezone", "status")


class Event(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    location: str | None
    starts_at: datetime
    ends_at: datetime
    timezone: str
    status: EventStatus
    published_at: datetime | None
    cancelled_at: datetime | None
    shift_count: int
    created_at: datetime
    updated_at: datetime


# --- shifts ----------------------------------------------------------------------------------


class ShiftCreate(RequestBody):
    title: Title
    description: ShiftDescription = ""
    location: Location | None = Field(
        default=None, description="Where the shift happens, when not at the event's location."
    )
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    capacity: Capacity


class ShiftBatch(RequestBody):
    shifts: list[ShiftCreate] = Field(min_length=1, max_length=MAX_SHIFTS_PER_BATCH)


class ShiftUpdate(RequestBody):
    """Only the fields sent change; `null` clears `location` and is refused for the others.
    A new time emails everyone signed up; a capacity below the confirmed count answers 409
    `capacity_below_signups`; a larger one promotes from the waiting list."""

    title: Title | None = None
    description: ShiftDescription | None = None
    location: Location | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    capacity: Capacity | None = None

    _required = not_null("title", "description", "starts_at", "ends_at", "capacity")


class Shift(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    title: str
    description: str
    location: str | None = Field(description="The shift's own location (null: the event's).")
    starts_at: datetime
    ends_at: datetime
    capacity: int
    confirmed_count: int
    waitlist_count: int
    no_show_count: int
    free_places: int
    sequence: int = Field(description="Grows whenever the shift's time, place or status changes.")
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime


# --- signups ---------------------------------------------------------------------------------


class SignupCreate(RequestBody):
    waitlist: bool = Field(
        default=False,
        description="Join the waiting list when the shift is full (else 409 `shift_full`).",
    )


class UserRef(BaseModel):
    id: uuid.UUID
    display_name: str


class Signup(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    shift_id: uuid.UUID
    user: UserRef
    status: SignupStatus
    position: int | None = Field(description="Place on the waiting list (waitlisted only).")
    created_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None


class RosterEntry(Signup):
    no_show_count: int = Field(description="The volunteer's no-shows in this organization.")


# --- public ----------------------------------------------------------------------------------


class PublicEventSummary(BaseModel):
    id: uuid.UUID
    title: str
    location: str | None
    starts_at: datetime
    ends_at: datetime
    timezone: str
    organization_name: str


class PublicShift(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    location: str | None
    starts_at: datetime
    ends_at: datetime
    capacity: int
    free_places: int


class PublicEvent(PublicEventSummary):
    description: str
    shifts: list[PublicShift]


class PublicEventPage(BaseModel):
    items: list[PublicEventSummary]
    next_cursor: str | None
