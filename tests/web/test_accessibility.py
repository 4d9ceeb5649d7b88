"""QUALITY 28: axe finds no "critical" or "serious" violation on any console page, the
pages with their error messages shown included."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.web.conftest import ConsoleServer
from tests.web.test_browser import _register, _sign_in, _verify

BLOCKING = {"critical", "serious"}
_axe = Axe()


def _blocking_violations(page: Page) -> list[str]:
    violations: list[dict[str, Any]] = _axe.run(page).response["violations"]
    return [
        f"{page.url}: {v['id']} ({v['impact']}): {v['help']}"
        for v in violations
        if v.get("impact") in BLOCKING
    ]


def test_every_page_passes_axe(page: Page, console: ConsoleServer) -> None:
    base = console.url
    found: list[str] = []
    for path in (
        "/login",
        "/register",
        "/forgot-password",
        "/reset-password?token=x",
        "/verify-email?token=x",
    ):
        page.goto(f"{base}{path}")
        found += _blocking_violations(page)

    _register(page, base, "Ada", "ada@example.com")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("wrong-password-123")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    found += _blocking_violations(page)

    page.goto(f"{base}/dev/mail")
    found += _blocking_violations(page)
    _verify(page, base, "ada@example.com")
    _sign_in(page, base, "ada@example.com")
    page.goto(f"{base}/orgs")
    page.get_by_label("Name").fill("Riverside Choir")
    page.get_by_role("button", name="Create organization").click()
    for path in ("/", "/orgs", "/account/password", "/account/sessions", "/dev/mail"):
        page.goto(f"{base}{path}")
        found += _blocking_violations(page)
    page.get_by_role("row").nth(1).get_by_role("link").click()
    found += _blocking_violations(page)
    assert found == []


def test_the_check_sees_a_violation(page: Page) -> None:
    # The control: an image without alt text is a critical violation, so a silent axe
    # (not injected, not run) would fail here rather than pass every page above.
    page.set_content('<!doctype html><html lang="en"><title>t</title><img src="a.png"></html>')
    assert any("image-alt" in found for found in _blocking_violations(page))
