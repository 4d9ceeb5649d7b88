"""Rendering of email templates (Jinja2) from `townsquare/email/templates/`.

An email template `NAME` is three files in that folder:

- `NAME.subject.txt`  the subject line (whitespace, newlines included, collapses to one space)
- `NAME.txt`          the plain-text body (required)
- `NAME.html`         the HTML body (optional; autoescaped; usually `{% extends "base.html" %}`)

Names are snake_case and say what the email is: `verify_email`, `password_reset`,
`invitation`, `support_reply`. Every variable a template uses must be in the context
(StrictUndefined): a missing one raises instead of sending a half-empty email.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

TEMPLATE_DIR = Path(__file__).parent / "templates"
_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*)*$")


class UnknownEmailTemplate(LookupError):
    """No `<name>.subject.txt` and `<name>.txt` exist for this template name."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text_body: str
    html_body: str | None


@lru_cache(maxsize=1)
def _text_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=False,  # noqa: S701 (plain text: nothing to escape)
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@lru_cache(maxsize=1)
def _html_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_email(template: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Render the subject, text and (if the file exists) HTML body of `template`."""
    if not _NAME.match(template):
        raise UnknownEmailTemplate(f"invalid email template name {template!r}")
    values = dict(context)
    try:
        subject_source = _text_env().get_template(f"{template}.subject.txt")
        text_source = _text_env().get_template(f"{template}.txt")
    except TemplateNotFound as exc:
        raise UnknownEmailTemplate(f"email template {template!r} not found") from exc
    subject = " ".join(subject_source.render(values).split())
    if not subject:
        raise ValueError(f"email template {template!r} rendered an empty subject")
    html_body: str | None
    try:
        html_source = _html_env().get_template(f"{template}.html")
    except TemplateNotFound:
        html_body = None
    else:
        html_body = html_source.render(values)
    return RenderedEmail(subject=subject, text_body=text_source.render(values), html_body=html_body)
