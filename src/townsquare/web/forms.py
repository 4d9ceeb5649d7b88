"""Form posts read into the API's own request schemas, and their errors as messages
shown next to the fields they concern."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from townsquare.errors import AppError, RateLimited
from townsquare.web.identity import CSRF_FIELD

ModelT = TypeVar("ModelT", bound=BaseModel)

FORM_LEVEL = ""
"""The key of an error that concerns the whole form (shown above its button)."""


@dataclass
class FormErrors:
    """Messages by field name; `FORM_LEVEL` for the form as a whole."""

    messages: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.messages.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.messages)


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields as single strings (a repeated field keeps its first value)."""
    form = await request.form()
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and key not in values:
            values[key] = value
    return values


def _message(error: ErrorDetails) -> str:
    message = str(error.get("msg", "is not valid"))
    # pydantic prefixes the messages of custom validators.
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].upper() + message[1:]


def parse(
    schema: type[ModelT],
    values: dict[str, str],
    errors: FormErrors,
    *,
    optional: tuple[str, ...] = (),
) -> ModelT | None:
    """The form validated by the API's schema, or None with `errors` filled in. Fields in
    `optional` left blank are left out (the schema's default applies)."""
    data = {k: v for k, v in values.items() if k != CSRF_FIELD and k in schema.model_fields}
    for name in optional:
        if not data.get(name, "").strip():
            data.pop(name, None)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            location = error.get("loc") or ()
            name = str(location[0]) if location else FORM_LEVEL
            errors.add(name if name in schema.model_fields else FORM_LEVEL, _message(error))
        return None


def add_app_error(errors: FormErrors, exc: AppError, *, field_for: dict[str, str]) -> None:
    """A service's refusal as a message: by the fields it names, else by `field_for`
    (error code to field), else for the whole form."""
    listed = exc.extra.get("errors") if isinstance(exc.extra, dict) else None
    if isinstance(listed, list) and listed:
        for item in listed:
            if isinstance(item, dict):
                errors.add(str(item.get("field", FORM_LEVEL)), str(item.get("message", "")))
        return
    if isinstance(exc, RateLimited):
        message = f"Too many attempts; try again in {max(1, exc.retry_after)} seconds."
    else:
        message = exc.detail or exc.title
    errors.add(field_for.get(exc.code, FORM_LEVEL), message)
