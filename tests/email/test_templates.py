"""Every email template in the folder is complete and renders safely."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import UndefinedError, meta

from townsquare.email.templates import TEMPLATE_DIR, _html_env, _text_env, render_email

NAMES = sorted(p.name.removesuffix(".subject.txt") for p in TEMPLATE_DIR.glob("*.subject.txt"))


def _variables(filename: str, *, html: bool = False) -> set[str]:
    env = _html_env() if html else _text_env()
    assert env.loader is not None
    source = env.loader.get_source(env, filename)[0]
    return set(meta.find_undeclared_variables(env.parse(source)))


def _all_variables(name: str) -> set[str]:
    needed = _variables(f"{name}.subject.txt") | _variables(f"{name}.txt")
    if (TEMPLATE_DIR / f"{name}.html").exists():
        needed |= _variables(f"{name}.html", html=True)
    return needed


def _hostile(variable: str) -> str:
    return f"<b>{variable}</b> & co\r\nBcc: evil@example.org"


# Variables that are lists of mappings (their keys are not found by `meta`): one item each,
# every key hostile too.
LISTS: dict[str, dict[str, list[str]]] = {
    "support_reply": {"replies": ["sender_name", "body", "attachment_name"]},
}


def _context(name: str) -> dict[str, Any]:
    context: dict[str, Any] = {variable: _hostile(variable) for variable in _all_variables(name)}
    for variable, keys in LISTS.get(name, {}).items():
        context[variable] = [{key: _hostile(key) for key in keys}]
    return context


class TestTemplates:
    def test_base_layout_and_test_email_exist(self) -> None:
        assert (TEMPLATE_DIR / "base.html").is_file()
        assert "test" in NAMES

    @pytest.mark.parametrize("name", NAMES)
    def test_every_template_renders_safely(self, name: str) -> None:
        assert (TEMPLATE_DIR / f"{name}.txt").is_file()
        context = _context(name)

        rendered = render_email(name, context)

        assert rendered.subject
        assert "\n" not in rendered.subject
        assert "\r" not in rendered.subject
        assert rendered.text_body.strip()
        if rendered.html_body is not None:
            assert rendered.html_body.lstrip().startswith("<!DOCTYPE html>")
            keys = [key for keys in LISTS.get(name, {}).values() for key in keys]
            for variable in [*_variables(f"{name}.html", html=True), *keys]:
                assert f"<b>{variable}</b>" not in rendered.html_body

    def test_missing_variable_is_an_error(self) -> None:
        needing = [name for name in NAMES if _variables(f"{name}.txt")]
        assert needing, "some template takes variables"
        with pytest.raises(UndefinedError):
            render_email(needing[0], {})
