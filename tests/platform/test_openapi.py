"""The OpenAPI document describes errors as problem+json."""

from __future__ import annotations

import httpx


class TestOpenApi:
    async def test_served_with_versioned_paths(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/openapi.json")
        assert response.status_code == 200
        paths = response.json()["paths"]
        assert any(path.startswith("/api/v1/") for path in paths)

    async def test_every_error_answer_is_problem_json(self, client: httpx.AsyncClient) -> None:
        document = (await client.get("/api/openapi.json")).json()
        assert "Problem" in document["components"]["schemas"]
        for path_item in document["paths"].values():
            for operation in path_item.values():
                responses = operation["responses"]
                assert "default" in responses
                for status, response in responses.items():
                    if status == "default" or status[0] in "45":
                        assert list(response["content"]) == ["application/problem+json"]

    async def test_docs_page(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/docs")
        assert response.status_code == 200
        assert "swagger" in response.text.lower()
