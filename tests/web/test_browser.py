"""The console in Chromium: a newcomer's first journey, and what a page must never do."""

from __future__ import annotations

from playwright.sync_api import Dialog, Page, expect

from tests.web.conftest import ConsoleServer

XSS = "<img src=x onerror=alert(1)>"
PASSWORD = "correct-horse-battery-staple"


def _register(page: Page, base: str, name: str, email: str) -> None:
    page.goto(f"{base}/register")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_have_text(
        "Check your inbox: we sent a link to finish signing up."
    )


def _verify(page: Page, base: str, email: str) -> None:
    """Follow the verification link from the mailbox, as a newcomer would."""
    page.goto(f"{base}/dev/mail")
    page.get_by_role("row").filter(has_text=email).get_by_role("link").click()
    page.locator("main a[href*='/verify-email?token=']").click()
    page.get_by_role("button", name="Verify my address").click()
    expect(page.get_by_role("status")).to_have_text("Your email address is verified.")


def _sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_newcomer_registers_verifies_and_creates_an_organization(
    page: Page, console: ConsoleServer
) -> None:
    base = console.url
    _register(page, base, "Ada Lovelace", "ada@example.com")

    _verify(page, base, "ada@example.com")

    _sign_in(page, base, "ada@example.com")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Ada Lovelace")
    expect(page.get_by_text("not verified yet")).to_have_count(0)

    page.get_by_role("link", name="Organizations").click()
    page.get_by_label("Name").fill("Riverside Choir")
    page.get_by_role("button", name="Create organization").click()
    expect(page.get_by_role("status")).to_have_text("The organization is created.")
    expect(page.get_by_role("row").filter(has_text="Riverside Choir")).to_contain_text("owner")
    expect(page.get_by_label("Current organization")).to_have_text("Riverside Choir")

    page.get_by_role("button", name="Sign out Ada Lovelace").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto(f"{base}/orgs")
    expect(page).to_have_url(f"{base}/login")


def test_a_wrong_password_shows_next_to_the_field(page: Page, console: ConsoleServer) -> None:
    base = console.url
    _register(page, base, "Grace", "grace@example.com")
    _sign_in(page, base, "grace@example.com", "not-the-right-password")
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_accessible_description("The email address or the password is wrong.")
    expect(page.get_by_label("Email")).to_have_value("grace@example.com")


def test_names_print_as_text(page: Page, console: ConsoleServer) -> None:
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    base = console.url
    _register(page, base, XSS, "mallory@example.com")
    _verify(page, base, "mallory@example.com")
    _sign_in(page, base, "mallory@example.com")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {XSS}")
    page.goto(f"{base}/orgs")
    page.get_by_label("Name").fill(XSS)
    page.get_by_role("button", name="Create organization").click()
    expect(page.get_by_role("row").filter(has_text=XSS)).to_have_count(1)
    expect(page.get_by_label("Current organization")).to_have_text(XSS)
    page.goto(f"{base}/dev/mail")
    expect(page.locator("img")).to_have_count(0)
    page.get_by_role("row").filter(has_text="mallory@example.com").get_by_role("link").click()
    expect(page.locator("pre")).to_contain_text(XSS)
    expect(page.locator("img")).to_have_count(0)
    page.goto(f"{base}/orgs")
    expect(page.locator("img")).to_have_count(0)
    assert dialogs == []


def test_a_form_without_its_csrf_token_is_refused(page: Page, console: ConsoleServer) -> None:
    base = console.url
    _register(page, base, "Eve", "eve@example.com")
    _verify(page, base, "eve@example.com")
    _sign_in(page, base, "eve@example.com")
    page.goto(f"{base}/orgs")
    page.locator("form[action='/orgs'] input[name=csrf_token]").evaluate("input => input.remove()")
    page.get_by_label("Name").fill("Forged Society")
    page.get_by_role("button", name="Create organization").click()
    expect(page.get_by_role("alert")).to_contain_text("did not come from this site")
    page.goto(f"{base}/orgs")
    expect(page.get_by_text("Forged Society")).to_have_count(0)
    expect(page.get_by_text("You belong to no organization yet.")).to_be_visible()
