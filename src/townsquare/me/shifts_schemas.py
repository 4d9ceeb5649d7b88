"""Response types of the signed-in person's shifts and calendar feed."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from townsquare.events.enums import EventStatus, SignupStatus


class MyShiftOrganization(BaseModel):
    id: uuid.UUID
    slug: str
    name: str


class MyShiftEvent(BaseModel):
    id: uuid.UUID
    title: str
    timezone: str = Field(description="IANA name: show the shift's times in it.")
    status: EventStatus


class MyShiftDetails(BaseModel):
    id: uuid.UUID
    title: str
    location: str | None = Field(description="The shift's location, else its event's.")
    starts_at: datetime
    ends_at: datetime
    cancelled_at: datetime | None = Field(
        description="Set when the shift or its event was cancelled."
    )


class MyShift(BaseModel):
    """One of the person's signups with its shift, event and organization."""

    id: uuid.UUID = Field(description="The signup's id.")
    status: SignupStatus
    position: int | None = Field(description="Place on the waiting list (waitlisted only).")
    created_at: datetime
    confirmed_at: datetime | None
    shift: MyShiftDetails
    event: MyShiftEvent
    organization: MyShiftOrganization


class MyShiftPage(BaseModel):
    """Upcoming: soonest first; past: latest first. Pass `next_cursor` as `?cursor=`."""

    items: list[MyShift]
    next_cursor: str | None


class CalendarToken(BaseModel):
    url: str = Field(description="The feed to subscribe to; it carries the token.")
    token: str = Field(description="Shown once; a new one revokes this one.")
