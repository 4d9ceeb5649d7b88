"""The request base and the field types shared by every domain's schemas."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from townsquare.kit.slugs import SLUG_PATTERN

TIMEZONE_MAX = 64
EMAIL_MAX = 320


class RequestBody(BaseModel):
    """Every request body: unknown fields (`is_staff`, `organization_id`...) answer 422."""

    model_config = ConfigDict(extra="forbid")


def not_null(*fields: str) -> Any:
    """Make `fields` of an update body refuse an explicit `null` (422 naming the field).

    In a `PATCH` body a field left out keeps its value and `null` clears it; for a field
    that cannot be cleared `null` is an error, the same way on every route:

        class OrganizationUpdate(RequestBody):
            name: OrgName | None = None
            _required = not_null("name")
    """

    def refuse_null(value: object) -> object:
        if value is None:
            raise PydanticCustomError(
                "null_not_allowed", "may not be null; leave the field out to keep its value"
            )
        return value

    return field_validator(*fields, mode="before")(refuse_null)


def reject_control_characters(value: str) -> str:
    """Refuse NUL, newlines and other control characters in one-line text."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def reject_control_characters_but_newlines(value: str) -> str:
    """Multi-line plain text: tabs and newlines are fine, other control characters are not."""
    if any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters other than tabs and newlines")
    return value


# Characters that change how the text around them reads without showing themselves:
# bidirectional embeddings, overrides, isolates and marks (`invoice\u202efdp.exe` reads
# as `invoiceexe.pdf`), and zero-width spaces and joiners.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
ZERO_WIDTH = frozenset("\u200b\u2060\ufeff")
# ZWNJ and ZWJ are part of the spelling of words in Persian, Arabic and Indic scripts and
# of emoji sequences: allowed between two such characters, never next to ASCII or space.
JOINERS = frozenset("\u200c\u200d")
INVISIBLE_CHARACTER = "invisible_character"


def _joins_script(before: str, after: str) -> bool:
    return all(
        c and not c.isascii() and not c.isspace() and c not in JOINERS for c in (before, after)
    )


def reject_invisible_characters(value: str) -> str:
    """Refuse bidirectional controls and zero-width characters in one-line text (422
    `invisible_character` on the field); multi-line bodies keep them."""
    for index, char in enumerate(value):
        if char in BIDI_CONTROLS or char in ZERO_WIDTH:
            kind = "a bidirectional control" if char in BIDI_CONTROLS else "a zero-width character"
        elif char in JOINERS:
            before = value[index - 1] if index else ""
            after = value[index + 1] if index + 1 < len(value) else ""
            if _joins_script(before, after):
                continue
            kind = "a zero-width joiner outside a word"
        else:
            continue
        raise PydanticCustomError(
            INVISIBLE_CHARACTER,
            "must not contain {kind} (U+{codepoint} at position {position})",
            {"kind": kind, "codepoint": f"{ord(char):04X}", "position": index + 1},
        )
    return value


def _single_line(value: str) -> str:
    return reject_invisible_characters(reject_control_characters(value))


@dataclass(frozen=True)
class SingleLine:
    """`Annotated[str, SingleLine(200)]`: stripped one-line text, no control characters, no
    bidirectional controls or zero-width characters (`reject_invisible_characters`)."""

    max_length: int
    min_length: int = 1

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_after_validator_function(
            _single_line,
            core_schema.str_schema(
                strip_whitespace=True, min_length=self.min_length, max_length=self.max_length
            ),
        )


@dataclass(frozen=True)
class PlainText:
    """`Annotated[str, PlainText(500)]`: stripped multi-line text (tabs and newlines)."""

    max_length: int

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_after_validator_function(
            reject_control_characters_but_newlines,
            core_schema.str_schema(strip_whitespace=True, max_length=self.max_length),
        )


@dataclass(frozen=True)
class Slug:
    """`Annotated[str, Slug(80)]`: lowercase ASCII words joined by hyphens."""

    max_length: int

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.str_schema(
            min_length=1, max_length=self.max_length, pattern=SLUG_PATTERN
        )


@dataclass(frozen=True)
class HttpUrlText:
    """`Annotated[str, HttpUrlText(2048)]`: an absolute http(s) URL without whitespace."""

    max_length: int

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_after_validator_function(
            _http_url, core_schema.str_schema(strip_whitespace=True, max_length=self.max_length)
        )


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_timezone(value: str) -> bool:
    """Whether `value` is an IANA time zone name this machine knows."""
    if value not in _timezones():
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _iana_timezone(value: str) -> str:
    if not is_timezone(value):
        raise ValueError("must be an IANA time zone name such as 'Europe/Paris' or 'UTC'")
    return value


def normalize_email(email: str) -> str:
    """Addresses are compared and stored without surrounding spaces and in lowercase."""
    return email.strip().lower()


def _http_url(value: str) -> str:
    lowered = value.lower()
    if not (lowered.startswith("https://") or lowered.startswith("http://")) or len(value) < 9:
        raise ValueError("must be an http(s) URL")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain whitespace or control characters")
    return value


Timezone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TIMEZONE_MAX),
    AfterValidator(_iana_timezone),
]
"""An IANA time zone name (`Europe/Paris`, `UTC`)."""

Email = Annotated[EmailStr, Field(max_length=EMAIL_MAX), AfterValidator(normalize_email)]
"""A valid address, normalized once (stripped, lowercase)."""

LooseEmail = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=EMAIL_MAX),
    AfterValidator(reject_control_characters),
]
"""An address as typed at sign-in; not validated further, so that a malformed one is
simply unknown (the same answer as any unknown address)."""

SearchText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=100),
    AfterValidator(reject_control_characters),
]
"""A `?q=` search term."""
