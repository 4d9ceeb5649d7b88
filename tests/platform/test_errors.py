"""The problem+json shape of every kind of error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError

from tests.conftest import RolledBackDatabase, _client_for
from townsquare.config import Settings
from townsquare.db import TransactionalRoute
from townsquare.errors import Conflict
from townsquare.main import create_app


class SlugTaken(Conflict):
    code = "slug_taken"
    title = "Slug taken"
    detail = "That slug is already used."


class Thing(BaseModel):
    name: str = Field(min_length=1, max_length=5)
    count: int


def _app_with_probe_routes(db: RolledBackDatabase, settings: Settings) -> FastAPI:
    app = create_app(settings, database=db)
    router = APIRouter(prefix="/api/v1/probe", route_class=TransactionalRoute)

    @router.post("/things")
    async def create_thing(thing: Thing) -> Thing:
        return thing

    @router.get("/conflict")
    async def conflict() -> None:
        raise SlugTaken()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 SELECT * FROM secrets")

    @router.get("/too-many-clients")
    async def too_many_clients() -> None:
        raise DBAPIError("SELECT 1", {}, _TooManyConnections("sorry, too many clients already"))

    app.include_router(router)

    # Outside the transactional route class (as the storage downloads are): the error
    # backstop in the middleware answers.
    plain = APIRouter(prefix="/api/v1/plain-probe")

    @plain.get("/connection-refused")
    async def connection_refused() -> None:
        raise ConnectionRefusedError("connect to 10.0.0.5:5432 refused")

    app.include_router(plain)
    return app


class _TooManyConnections(Exception):
    sqlstate = "53300"


@pytest.fixture
async def probe(db: RolledBackDatabase, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client_for(_app_with_probe_routes(db, settings)):
        yield client


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail"} <= body.keys()
    return body  # type: ignore[no-any-return]


class TestProblemJson:
    async def test_unknown_route_is_404(self, probe: httpx.AsyncClient) -> None:
        _assert_problem(await probe.get("/api/v1/nothing-here"), 404, "not_found")

    async def test_wrong_method_is_405(self, probe: httpx.AsyncClient) -> None:
        _assert_problem(await probe.delete("/healthz"), 405, "method_not_allowed")

    async def test_validation_error_lists_fields(self, probe: httpx.AsyncClient) -> None:
        response = await probe.post("/api/v1/probe/things", json={"name": "too long", "count": "x"})
        body = _assert_problem(response, 422, "validation_error")
        fields = {error["field"] for error in body["errors"]}  # type: ignore[attr-defined]
        assert fields == {"name", "count"}

    async def test_malformed_json_is_422(self, probe: httpx.AsyncClient) -> None:
        response = await probe.post(
            "/api/v1/probe/things", content=b"{nope", headers={"content-type": "application/json"}
        )
        _assert_problem(response, 422, "validation_error")

    async def test_domain_error_carries_its_code(self, probe: httpx.AsyncClient) -> None:
        body = _assert_problem(await probe.get("/api/v1/probe/conflict"), 409, "slug_taken")
        assert body["detail"] == "That slug is already used."

    async def test_unhandled_error_hides_the_details(self, probe: httpx.AsyncClient) -> None:
        response = await probe.get("/api/v1/probe/boom", headers={"X-Request-ID": "req-42"})
        body = _assert_problem(response, 500, "internal_error")
        assert body["request_id"] == "req-42"
        assert response.headers["x-request-id"] == "req-42"
        text = response.text
        assert "Traceback" not in text
        assert "hunter2" not in text
        assert "SELECT" not in text


class TestDatabaseOutage:
    async def test_database_out_of_connections_is_503(self, probe: httpx.AsyncClient) -> None:
        response = await probe.get("/api/v1/probe/too-many-clients")
        body = _assert_problem(response, 503, "database_unavailable")
        assert "too many clients" not in response.text
        assert response.headers["retry-after"] == "5"
        assert body["request_id"]

    async def test_the_same_answer_outside_a_transaction(self, probe: httpx.AsyncClient) -> None:
        response = await probe.get("/api/v1/plain-probe/connection-refused")
        _assert_problem(response, 503, "database_unavailable")
        assert "10.0.0.5" not in response.text
        assert response.headers["retry-after"] == "5"


class TestRequestId:
    async def test_generated_when_missing(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert len(response.headers["x-request-id"]) >= 16

    async def test_echoed_when_given(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"

    async def test_unsafe_value_replaced(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "bad value\twith tab"})
        assert response.headers["x-request-id"] != "bad value\twith tab"
