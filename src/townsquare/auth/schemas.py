"""Request and response bodies of the identity API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from townsquare.auth.models import AVATAR_URL_MAX, DISPLAY_NAME_MAX
from townsquare.auth.passwords import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, is_common_password
from townsquare.kit.fields import (
    Email,
    LooseEmail,
    RequestBody,
    SingleLine,
    Timezone,
    not_null,
)


def _not_common(value: str) -> str:
    if is_common_password(value):
        raise ValueError("this password is too common; choose one that is harder to guess")
    return value


DisplayName = Annotated[str, SingleLine(DISPLAY_NAME_MAX)]
NewPassword = Annotated[
    str,
    Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH),
    AfterValidator(_not_common),
]
"""10 to 128 characters, not a common password; never stripped or truncated."""
AnyPassword = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
AvatarUrl = Annotated[HttpUrl, Field(max_length=AVATAR_URL_MAX)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Registration(RequestBody):
    """Unknown fields (`is_staff` among them) are refused with 422."""

    email: Email
    password: NewPassword
    display_name: DisplayName
    timezone: Timezone | None = None


class Login(RequestBody):
    email: LooseEmail
    password: AnyPassword


class EmailedToken(RequestBody):
    """A token from an email link (verification)."""

    token: Token


class PasswordChange(RequestBody):
    current_password: AnyPassword
    new_password: NewPassword


class PasswordResetRequest(RequestBody):
    email: LooseEmail


class PasswordReset(RequestBody):
    token: Token
    new_password: NewPassword


class ProfileUpdate(RequestBody):
    """Only these fields; anything else (email, is_staff) is refused with 422.
    `avatar_url: null` removes the avatar; display_name and timezone may not be null."""

    display_name: DisplayName | None = None
    timezone: Timezone | None = None
    avatar_url: AvatarUrl | None = None

    _required = not_null("display_name", "timezone")


class User(BaseModel):
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


class SignedIn(BaseModel):
    """The signed-in user and the CSRF token to send as `X-CSRF-Token` on unsafe requests
    (also readable from the `csrftoken` cookie)."""

    user: User
    csrf_token: str


class Session(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool = False


class Accepted(BaseModel):
    detail: str


class TokenValidity(BaseModel):
    valid: bool


class AdminUser(User):
    is_active: bool
    last_login_at: datetime | None
