"""Request and response types of organizations, members, invitations, modules, audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)

from townsquare.auth.models import EMAIL_MAX as USER_EMAIL_MAX
from townsquare.kit.slugs import SLUG_PATTERN
from townsquare.orgs.enums import InvitationStatus, MemberRole, Module
from townsquare.orgs.models import AVATAR_URL_MAX, NAME_MAX, SLUG_MAX, TIMEZONE_MAX


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _no_control_characters(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def _iana_timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError("must be an IANA time zone name such as 'Europe/Paris' or 'UTC'")
    return value


def _http_url(value: str) -> str:
    lowered = value.lower()
    if not (lowered.startswith("https://") or lowered.startswith("http://")) or len(value) < 9:
        raise ValueError("must be an http(s) URL")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain whitespace or control characters")
    return value


OrgName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX),
    AfterValidator(_no_control_characters),
]
OrgSlug = Annotated[str, StringConstraints(min_length=1, max_length=SLUG_MAX, pattern=SLUG_PATTERN)]
AvatarUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=AVATAR_URL_MAX),
    AfterValidator(_http_url),
]
Timezone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TIMEZONE_MAX),
    AfterValidator(_iana_timezone),
]
InvitedEmail = Annotated[
    EmailStr, Field(max_length=USER_EMAIL_MAX), AfterValidator(lambda v: v.strip().lower())
]
SearchText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=100),
    AfterValidator(_no_control_characters),
]


class _Body(BaseModel):
    """Request bodies refuse unknown fields (`organization_id`, `role` where not offered)."""

    model_config = ConfigDict(extra="forbid")


# --- organizations ----------------------------------------------------------------------


class OrganizationCreate(_Body):
    name: OrgName
    slug: OrgSlug | None = Field(
        default=None,
        description="Lowercase words joined by hyphens; made from the name if omitted.",
    )
    avatar_url: AvatarUrl | None = None
    timezone: Timezone | None = Field(
        default=None, description="IANA time zone; the server's DEFAULT_TIMEZONE if omitted."
    )


class OrganizationUpdate(_Body):
    """Only the fields sent change; `avatar_url: null` clears the avatar."""

    name: OrgName | None = None
    slug: OrgSlug | None = None
    avatar_url: AvatarUrl | None = None
    timezone: Timezone | None = None


class OrganizationRead(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    avatar_url: str | None
    timezone: str
    modules: list[Module]
    role: MemberRole = Field(description="The caller's role in the organization.")
    created_at: datetime
    updated_at: datetime


class MyOrganization(BaseModel):
    """One of the caller's organizations, as listed by `GET /orgs` and `GET /auth/me`."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    avatar_url: str | None
    role: MemberRole


# --- members ----------------------------------------------------------------------------


class MemberRead(BaseModel):
    id: uuid.UUID = Field(description="The membership id (used in member paths).")
    user_id: uuid.UUID
    display_name: str
    email: str
    avatar_url: str | None
    role: MemberRole
    joined_at: datetime


class MemberRoleUpdate(_Body):
    role: MemberRole


class OwnershipTransfer(_Body):
    member_id: uuid.UUID = Field(description="Membership id of an admin of the organization.")


class OwnershipTransferred(BaseModel):
    new_owner: MemberRead
    previous_owner: MemberRead


# --- invitations ------------------------------------------------------------------------


class InvitationCreate(_Body):
    email: InvitedEmail
    role: MemberRole = Field(
        default=MemberRole.member,
        description="Any role but owner, and not above the inviter's own role.",
    )


class InvitationRead(BaseModel):
    id: uuid.UUID
    email: str
    role: MemberRole
    status: InvitationStatus
    expires_at: datetime
    invited_by_id: uuid.UUID | None
    accepted_by_id: uuid.UUID | None
    accepted_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class InvitationPreview(BaseModel):
    """What the holder of an invitation link may see before accepting it."""

    organization_name: str
    organization_slug: str
    organization_avatar_url: str | None
    email: str
    role: MemberRole
    inviter_display_name: str | None
    expires_at: datetime
    status: InvitationStatus


class InvitationAccepted(BaseModel):
    organization: MyOrganization
    member_id: uuid.UUID


# --- modules ----------------------------------------------------------------------------


class ModulesUpdate(_Body):
    modules: list[Module] = Field(max_length=20, description="The modules to have on.")


class ModulesRead(BaseModel):
    modules: list[Module]


# --- audit log --------------------------------------------------------------------------


class AuditActor(BaseModel):
    id: uuid.UUID
    display_name: str


class AuditLogEntryRead(BaseModel):
    id: uuid.UUID
    action: str
    actor: AuditActor | None
    target_type: str | None
    target_id: str | None
    data: dict[str, Any]
    created_at: datetime
