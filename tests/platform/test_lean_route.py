"""Lean routes answer like any other FastAPI route: same 422s, 405s, problem bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request, Response
from fastapi.routing import APIRoute

from townsquare.errors import NotFound, install_error_handlers
from townsquare.middleware import RequestContextMiddleware
from townsquare.routing import LeanRoute, LeanRoutes


class ThingMissing(NotFound):
    code = "thing_missing"


async def thing(
    request: Request,
    name: Annotated[str, Path(max_length=8, pattern=r"^[a-z]+$")],
    times: Annotated[int, Query(ge=1, le=3)] = 1,
    tag: Annotated[str | None, Query(max_length=4)] = None,
) -> Response:
    if name == "missing":
        raise ThingMissing()
    if name == "broken":
        raise RuntimeError("secret detail")
    body = f"{name * times}|{tag}|{request.url.path}"
    return Response(body, media_type="text/plain")


def _app(route_class: type[APIRoute], *, lean_first: bool = True) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(LeanRoutes)
    app.add_middleware(RequestContextMiddleware)
    if not lean_first:

        @app.get("/things/{name}")
        async def shadow(name: str) -> dict[str, str]:
            return {"shadow": name}

    app.router.add_api_route(
        "/things/{name}", thing, methods=["GET"], route_class_override=route_class
    )
    if lean_first:
        app.router.routes.insert(0, app.router.routes.pop())
    return app


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def lean() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(_app(LeanRoute)):
        yield client


@pytest.fixture
async def plain() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(_app(APIRoute)):
        yield client


REQUESTS = [
    ("GET", "/things/abc"),
    ("GET", "/things/abc?times=3&tag=x&other=1"),
    ("GET", "/things/abc?times=2&times=3"),
    ("GET", "/things/abc?times=0"),
    ("GET", "/things/abc?times=x&tag=toolong"),
    ("GET", "/things/ABC"),
    ("GET", "/things/abcdefghi"),
    ("GET", "/things/missing"),
    ("GET", "/things/abc/"),
    ("HEAD", "/things/abc"),
    ("POST", "/things/abc"),
]


class TestLeanRoute:
    @pytest.mark.parametrize(("method", "url"), REQUESTS)
    async def test_answers_what_an_api_route_answers(
        self, lean: httpx.AsyncClient, plain: httpx.AsyncClient, method: str, url: str
    ) -> None:
        got, expected = await lean.request(method, url), await plain.request(method, url)
        assert got.status_code == expected.status_code
        assert got.content.replace(got.headers["x-request-id"].encode(), b"") == (
            expected.content.replace(expected.headers["x-request-id"].encode(), b"")
        )
        drop = {"x-request-id"}
        assert {k: v for k, v in got.headers.items() if k not in drop} == {
            k: v for k, v in expected.headers.items() if k not in drop
        }

    async def test_the_answer_comes_from_the_endpoint(self, lean: httpx.AsyncClient) -> None:
        response = await lean.get("/things/ab?times=2&tag=t")
        assert (response.status_code, response.text) == (200, "abab|t|/things/ab")

    async def test_an_unhandled_error_is_a_500_problem(self, lean: httpx.AsyncClient) -> None:
        response = await lean.get("/things/broken", headers={"X-Request-ID": "req-7"})
        assert response.status_code == 500
        assert response.json()["request_id"] == "req-7"
        assert "secret" not in response.text

    async def test_a_route_registered_before_keeps_its_precedence(self) -> None:
        async for client in _client(_app(LeanRoute, lean_first=False)):
            assert (await client.get("/things/abc")).json() == {"shadow": "abc"}

    async def test_inside_an_included_router_it_is_a_plain_route(self) -> None:
        app = FastAPI()
        install_error_handlers(app)
        app.add_middleware(LeanRoutes)
        router = APIRouter(prefix="/v1")
        router.add_api_route("/things/{name}", thing, route_class_override=LeanRoute)
        app.include_router(router)
        async for client in _client(app):
            response = await client.get("/v1/things/ab")
            assert (response.status_code, response.text) == (200, "ab|None|/v1/things/ab")
            assert (await client.get("/v1/things/AB")).status_code == 422


async def _with_body(item: Annotated[dict[str, int], Body()]) -> Response:
    return Response()


async def _with_dependency(value: Annotated[int, Depends(lambda: 1)]) -> Response:
    return Response()


async def _with_list(tags: Annotated[list[str], Query()]) -> Response:
    return Response()


def _sync(name: str) -> Response:
    return Response()


@pytest.mark.parametrize("endpoint", [_with_body, _with_dependency, _with_list, _sync])
def test_refuses_endpoints_it_cannot_serve_leanly(endpoint: object) -> None:
    with pytest.raises(TypeError):
        LeanRoute("/x/{name}", endpoint, methods=["GET"])  # type: ignore[arg-type]
