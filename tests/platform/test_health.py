"""Liveness and readiness."""

from __future__ import annotations

import httpx

from tests.conftest import _client_for, make_settings
from townsquare.db import Database
from townsquare.main import create_app


class TestHealthz:
    async def test_alive(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


class TestReadyz:
    async def test_ready_when_database_answers(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200

    async def test_503_when_database_unreachable(self) -> None:
        settings = make_settings(DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/nothing")
        database = Database(settings)
        try:
            async for client in _client_for(create_app(settings, database=database)):
                response = await client.get("/readyz")
                assert response.status_code == 503
                assert response.headers["content-type"].startswith("application/problem+json")
                body = response.json()
                assert body["code"] == "database_unavailable"
                assert "127.0.0.1" not in response.text
                assert "nobody" not in response.text
        finally:
            await database.dispose()
