"""HEAD on every GET route: the GET's status and headers, no body."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

_PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")


def _get_paths(app: FastAPI) -> list[str]:
    """Every GET route's path with its parameters filled in (values no route knows)."""
    paths = []
    for context in iter_route_contexts(app.routes):
        if context.methods and "GET" in context.methods and context.path:
            paths.append(_PARAM.sub("00000000-0000-0000-0000-000000000000", context.path))
    return paths


class TestHead:
    async def test_every_get_route_answers_head_as_its_get(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        paths = _get_paths(app)
        assert len(paths) > 20
        for path in paths:
            get = await client.get(path)
            head = await client.head(path)
            assert head.status_code != 405, path
            assert head.status_code == get.status_code, path
            assert head.content == b"", path
            assert head.headers.get("content-type") == get.headers.get("content-type"), path

    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        get = await client.get("/healthz")
        head = await client.head("/healthz")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"]
        assert head.headers["x-request-id"]

    async def test_openapi_document(self, client: httpx.AsyncClient) -> None:
        head = await client.head("/api/openapi.json")
        assert head.status_code == 200
        assert head.headers["content-type"] == "application/json"
        assert head.content == b""

    async def test_head_is_not_an_operation_of_the_openapi_document(
        self, client: httpx.AsyncClient
    ) -> None:
        paths = (await client.get("/api/openapi.json")).json()["paths"]
        assert not [path for path, operations in paths.items() if "head" in operations]

    async def test_a_post_only_route_still_answers_405(self, client: httpx.AsyncClient) -> None:
        head = await client.head("/api/v1/auth/login")
        assert head.status_code == 405
        assert "POST" in head.headers["allow"]
