"""One list of allowed origins for CORS and the CSRF check: PUBLIC_URL's origin and
ALLOWED_ORIGINS. A browser app served from PUBLIC_URL may call the API cross-origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager

from tests.conftest import RolledBackDatabase, make_settings
from townsquare.main import create_app

LOGIN = "/api/v1/auth/login"


@asynccontextmanager
async def _client(db: RolledBackDatabase, **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(**settings), database=db)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50300))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield client


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-csrf-token",
    }


async def test_preflight_from_public_url_is_allowed_without_allowed_origins(
    db: RolledBackDatabase,
) -> None:
    async with _client(db, PUBLIC_URL="https://Town.Example:443/app", ALLOWED_ORIGINS=[]) as client:
        response = await client.options(LOGIN, headers=_preflight("https://town.example"))
        login = await client.post(
            LOGIN,
            json={"email": "nobody@example.org", "password": "wrong"},
            headers={"Origin": "https://town.example"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "https://town.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "x-csrf-token" in response.headers["access-control-allow-headers"].lower()
    # The actual request: the CSRF origin check and CORS agree, so the browser reads it.
    assert login.status_code == 401
    assert login.headers["access-control-allow-origin"] == "https://town.example"


async def test_allowed_origins_and_public_url_both_allowed(db: RolledBackDatabase) -> None:
    async with _client(
        db, PUBLIC_URL="https://town.example", ALLOWED_ORIGINS=["https://app.example"]
    ) as client:
        from_public = await client.options(LOGIN, headers=_preflight("https://town.example"))
        from_app = await client.options(LOGIN, headers=_preflight("https://app.example"))
    assert from_public.status_code == 200
    assert from_app.status_code == 200
    assert from_app.headers["access-control-allow-origin"] == "https://app.example"


async def test_foreign_origin_refused_by_both(db: RolledBackDatabase) -> None:
    async with _client(db, PUBLIC_URL="https://town.example") as client:
        preflight = await client.options(LOGIN, headers=_preflight("https://evil.example"))
        login = await client.post(
            LOGIN,
            json={"email": "nobody@example.org", "password": "wrong"},
            headers={"Origin": "https://evil.example"},
        )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert login.status_code == 403
    assert login.json()["code"] == "csrf_failed"
    assert "access-control-allow-origin" not in login.headers
