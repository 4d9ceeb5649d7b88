"""Request and response types of organizations, members, invitations, modules, audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from townsquare.auth.models import EMAIL_MAX as USER_EMAIL_MAX
from townsquare.kit.fields import (
    Email,
    HttpUrlText,
    RequestBody,
    SingleLine,
    Slug,
    Timezone,
    not_null,
)
from townsquare.orgs.enums import InvitationStatus, MemberRole, Module
from townsquare.orgs.models import AVATAR_URL_MAX, NAME_MAX, SLUG_MAX

OrgName = Annotated[str, SingleLine(NAME_MAX)]
OrgSlug = Annotated[str, Slug(SLUG_MAX)]
AvatarUrl = Annotated[str, HttpUrlText(AVATAR_URL_MAX)]
# No longer than an account's address: only an account with this address can accept.
InvitedEmail = Annotated[Email, Field(max_length=USER_EMAIL_MAX)]


# --- organizations ----------------------------------------------------------------------


class OrganizationCreate(RequestBody):
    name: OrgName
    slug: OrgSlug | None = Field(
        default=None,
        description="Lowercase words joined by hyphens; made from the name if omitted.",
    )
    avatar_url: AvatarUrl | None = None
    timezone: Timezone | None = Field(
        default=None, description="IANA time zone; the server's DEFAULT_TIMEZONE if omitted."
    )


class OrganizationUpdate(RequestBody):
    """Only the fields sent change; `avatar_url: null` clears the avatar."""

    name: OrgName | None = None
    slug: OrgSlug | None = None
    avatar_url: AvatarUrl | None = None
    timezone: Timezone | None = None

    _required = not_null("name", "slug", "timezone")


class Organization(BaseModel):
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


class Member(BaseModel):
    id: uuid.UUID = Field(description="The membership id (used in member paths).")
    user_id: uuid.UUID
    display_name: str
    email: str
    avatar_url: str | None
    role: MemberRole
    joined_at: datetime


class MemberRoleUpdate(RequestBody):
    role: MemberRole


class OwnershipTransfer(RequestBody):
    member_id: uuid.UUID = Field(description="Membership id of an admin of the organization.")


class OwnershipTransferred(BaseModel):
    new_owner: Member
    previous_owner: Member


# --- invitations ------------------------------------------------------------------------


class InvitationCreate(RequestBody):
    email: InvitedEmail
    role: MemberRole = Field(
        default=MemberRole.member,
        description="Any role but owner, and not above the inviter's own role.",
    )


class Invitation(BaseModel):
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


class ModulesUpdate(RequestBody):
    modules: list[Module] = Field(max_length=20, description="The modules to have on.")


class Modules(BaseModel):
    modules: list[Module]


# --- audit log --------------------------------------------------------------------------


class AuditActor(BaseModel):
    id: uuid.UUID
    display_name: str


class AuditLogEntry(BaseModel):
    id: uuid.UUID
    action: str
    actor: AuditActor | None
    target_type: str | None
    target_id: str | None
    data: dict[str, Any]
    created_at: datetime
