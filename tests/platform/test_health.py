"""Liveness and readiness."""

from __future__ import annotations

import logging

import httpx
import pytest

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


class TestAccessLog:
    async def test_one_line_per_request_with_its_id(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger="townsquare.access"):
            await client.get("/healthz", headers={"X-Request-ID": "log-me-1"})
        lines = [r for r in caplog.records if r.name == "townsquare.access"]
        assert len(lines) == 1
        assert lines[0].request_id == "log-me-1"  # type: ignore[attr-defined]
        assert lines[0].status == 200  # type: ignore[attr-defined]

    async def test_tokens_in_paths_are_not_logged(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger="townsquare.access"):
            await client.get("/api/v1/invitations/secret-token-value")
        assert "secret-token-value" not in caplog.text
