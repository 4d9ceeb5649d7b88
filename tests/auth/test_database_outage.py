"""With the database out, every route answers the same 503 `database_unavailable`."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import _client_for, make_settings
from townsquare.db import Database
from townsquare.main import create_app

ROUTES = [
    ("POST", "/api/v1/auth/login", {"email": "ada@example.org", "password": "whatever-1234"}),
    (
        "POST",
        "/api/v1/auth/register",
        {"email": "ada@example.org", "password": "correct-Horse-7", "display_name": "Ada"},
    ),
    ("POST", "/api/v1/auth/request-password-reset", {"email": "ada@example.org"}),
    ("GET", "/api/v1/auth/me", None),
    ("GET", "/api/v1/auth/sessions", None),
    ("GET", "/api/v1/orgs", None),
    ("GET", "/api/v1/orgs/acme/articles", None),
    ("GET", "/api/v1/public/orgs/acme/articles", None),
    ("GET", "/readyz", None),
]


async def test_every_route_answers_database_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/nothing")
    database = Database(settings)
    caplog.set_level(logging.INFO)
    try:
        async for client in _client_for(create_app(settings, database=database)):
            client.cookies.set("townsquare_session", "a-session-token", domain="testserver.local")
            for method, path, body in ROUTES:
                response = await client.request(method, path, json=body)
                label = f"{method} {path}: {response.text}"
                assert response.status_code == 503, label
                assert response.json()["code"] == "database_unavailable", label
                assert "127.0.0.1" not in response.text
    finally:
        await database.dispose()
    assert not [r for r in caplog.records if r.exc_info and "ada@example.org" in (r.exc_text or "")]
    assert all("ada@example.org" not in r.getMessage() for r in caplog.records)
