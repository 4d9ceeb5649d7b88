"""Reading the console's pages as a browser without JavaScript would."""

from __future__ import annotations

import re

import httpx

from tests.factories import DEFAULT_PASSWORD

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def field_error(page: httpx.Response, field: str) -> str:
    """The message shown under `field` (empty when there is none)."""
    found = re.search(rf'<small id="error-{field}" class="field-error">([^<]*)</small>', page.text)
    return found.group(1) if found else ""


async def post_form(
    client: httpx.AsyncClient, page_path: str, data: dict[str, str], *, action: str | None = None
) -> httpx.Response:
    """Open the page, then post its form with the page's CSRF token."""
    page = await client.get(page_path)
    return await client.post(action or page_path, data={"csrf_token": csrf_of(page), **data})


async def sign_in_form(
    client: httpx.AsyncClient, email: str, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    return await post_form(client, "/login", {"email": email, "password": password})
