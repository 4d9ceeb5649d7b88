"""Request and response bodies of the identity API."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from townsquare.auth.models import AVATAR_URL_MAX, DISPLAY_NAME_MAX, EMAIL_MAX, TIMEZONE_MAX
from townsquare.auth.passwords import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, is_common_password


def _valid_timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError("not a known IANA time zone, such as Europe/Paris or UTC")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("not a known IANA time zone, such as Europe/Paris or UTC") from exc
    return value


_TIMEZONES: frozenset[str] | None = None


def _timezones() -> frozenset[str]:
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = frozenset(available_timezones())
    return _TIMEZONES


def _not_common(value: str) -> str:
    if is_common_password(value):
        raise ValueError("this password is too common; choose one that is harder to guess")
    return value


def _normalize_email(value: str) -> str:
    return value.strip().lower()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def no_control_characters(value: str) -> str:
    """Refuse NUL, newlines and other control characters in one-line text."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


Timezone = Annotated[
    str, StringConstraints(min_length=1, max_length=TIMEZONE_MAX), AfterValidator(_valid_timezone)
]
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=DISPLAY_NAME_MAX),
    AfterValidator(no_control_characters),
]
LooseEmail = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=320),
    AfterValidator(no_control_characters),
]
"""An email as typed at sign-in; not validated further, so that a malformed one is simply
unknown (the same answer as any unknown address)."""
Email = Annotated[EmailStr, Field(max_length=EMAIL_MAX), AfterValidator(_normalize_email)]
NewPassword = Annotated[
    str,
    Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH),
    AfterValidator(_not_common),
]
"""10 to 128 characters, not a common password; never stripped or truncated."""
AnyPassword = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
AvatarUrl = Annotated[HttpUrl, Field(max_length=AVATAR_URL_MAX)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Strict):
    """Unknown fields (`is_staff` among them) are refused with 422."""

    email: Email
    password: NewPassword
    display_name: DisplayName
    timezone: Timezone | None = None


class LoginRequest(Strict):
    email: LooseEmail
    password: AnyPassword


class TokenRequest(Strict):
    token: Token


class ChangePasswordRequest(Strict):
    current_password: AnyPassword
    new_password: NewPassword


class PasswordResetRequest(Strict):
    email: LooseEmail


class ResetPasswordRequest(Strict):
    token: Token
    new_password: NewPassword


class UpdateMeRequest(Strict):
    """Only these fields; anything else (email, is_staff) is refused with 422."""

    display_name: DisplayName | None = None
    timezone: Timezone | None = None
    avatar_url: AvatarUrl | None = None
    """`null` removes the avatar; display_name and timezone may not be null."""

    @model_validator(mode="after")
    def _required_values(self) -> UpdateMeRequest:
        for field in ("display_name", "timezone"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise PydanticCustomError("missing", "{field} may not be null", {"field": field})
        return self


class MembershipSummary(BaseModel):
    """An organization the user belongs to, with the user's role in it."""

    id: uuid.UUID
    name: str
    slug: str
    role: str
    avatar_url: str | None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    timezone: str
    avatar_url: str | None
    is_staff: bool
    email_verified: bool
    email_verified_at: datetime | None
    created_at: datetime


class Me(UserOut):
    organizations: list[MembershipSummary]


class SignedIn(BaseModel):
    """The signed-in user and the CSRF token to send as `X-CSRF-Token` on unsafe requests
    (also readable from the `csrftoken` cookie)."""

    user: UserOut
    csrf_token: str


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool = False


class SessionList(BaseModel):
    items: list[SessionOut]


class Accepted(BaseModel):
    detail: str


class TokenValidity(BaseModel):
    valid: bool


class AdminUserOut(UserOut):
    is_active: bool
    last_login_at: datetime | None
