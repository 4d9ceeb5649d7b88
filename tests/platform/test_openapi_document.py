"""The served OpenAPI document of the whole app: the session cookie as a security scheme, the
CSRF header on unsafe cookie operations, the errors of every guard, and a description that
names only what is built."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import routing

from tests.conftest import make_settings
from townsquare.main import API_DESCRIPTION, create_app

SETTINGS = make_settings(SESSION_COOKIE_NAME="ts_session_doc")
APP = create_app(SETTINGS)
DOCUMENT: dict[str, Any] = APP.openapi()
UNSAFE = {"post", "put", "patch", "delete"}

OPERATIONS = [
    pytest.param(method, path, operation, id=f"{method.upper()} {path}")
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
]


def _codes(operation: dict[str, Any], status: int) -> set[str]:
    response = operation["responses"].get(str(status))
    if response is None:
        return set()
    schema = response["content"]["application/problem+json"]["schema"]
    if "allOf" not in schema:
        return set()
    return set(schema["allOf"][1]["properties"]["code"]["enum"])


def _needs_session(operation: dict[str, Any]) -> bool:
    return operation.get("security") == [{"cookieAuth": []}]


def _reads_session(operation: dict[str, Any]) -> bool:
    return {"cookieAuth": []} in operation.get("security", [])


def _csrf_header(operation: dict[str, Any]) -> dict[str, Any] | None:
    parameters: list[dict[str, Any]] = operation.get("parameters", [])
    found = [p for p in parameters if p["in"] == "header" and p["name"] == "X-CSRF-Token"]
    return found[0] if found else None


def test_the_cookie_scheme_is_the_configured_session_cookie() -> None:
    scheme = DOCUMENT["components"]["securitySchemes"]["cookieAuth"]
    assert scheme == {**scheme, "type": "apiKey", "in": "cookie", "name": "ts_session_doc"}


def test_public_operations_carry_no_security_requirement() -> None:
    public = [
        DOCUMENT["paths"]["/api/v1/auth/login"]["post"],
        DOCUMENT["paths"]["/api/v1/public/orgs/{org}/articles"]["get"],
        DOCUMENT["paths"]["/healthz"]["get"],
    ]
    assert all("security" not in operation for operation in public)
    assert _needs_session(DOCUMENT["paths"]["/api/v1/auth/me"]["get"])
    assert _needs_session(DOCUMENT["paths"]["/api/v1/orgs/{org}"]["patch"])


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS)
def test_guards_are_documented(method: str, path: str, operation: dict[str, Any]) -> None:
    if _needs_session(operation):
        assert "not_authenticated" in _codes(operation, 401)
    csrf = _csrf_header(operation)
    if method in UNSAFE and _reads_session(operation):
        assert csrf is not None
        assert csrf["required"] is _needs_session(operation)
        assert "csrf_failed" in _codes(operation, 403)
    else:
        assert csrf is None
    if method not in UNSAFE:
        # The CSRF and Origin checks run on unsafe methods only.
        assert "csrf_failed" not in _codes(operation, 403)
    if "{org}" in path and _needs_session(operation):
        assert "organization_not_found" in _codes(operation, 404)


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS)
def test_every_documented_error_lists_its_codes(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    for status, response in operation["responses"].items():
        if status[0] in "45":
            codes = _codes(operation, int(status))
            assert codes, f"{status} lists no code"
            for code in codes:
                assert f"`{code}`" in response["description"]


def test_operations_list_more_than_validation_errors() -> None:
    # Before the errors were derived, 26 of 65 operations listed nothing but 422.
    bare = [
        f"{method.upper()} {path}"
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if set(operation["responses"]) - {"default", "422"} <= {"200", "201", "202", "204"}
        and path != "/healthz"
    ]
    assert bare == []


def test_route_declared_descriptions_are_kept() -> None:
    response = DOCUMENT["paths"]["/api/v1/orgs/{org}/articles/{article_id}"]["patch"]["responses"]
    assert response["409"]["description"].startswith("`edit_conflict`: the article changed")
    assert "- `slug_taken`" in response["409"]["description"]


def test_the_description_names_only_built_paths() -> None:
    assert DOCUMENT["info"]["description"] == API_DESCRIPTION
    served = {
        str(context.path_format)
        for context in routing.iter_route_contexts(list(APP.routes))
        if context.path_format
    }
    named = re.findall(r"`(/api/v1/[^`]*)`", API_DESCRIPTION)
    assert len(named) >= 10
    for path in named:
        assert any(route.startswith(path.rstrip("/")) for route in served), path


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/public/orgs/{org}/articles"),  # the read pool, under `async with`
        ("get", "/api/v1/public/orgs/{org}/events"),
        ("get", "/api/v1/auth/me"),  # the request's transaction
        ("post", "/api/v1/orgs/{org}/events"),
    ],
)
def test_reads_of_the_database_list_its_outage(method: str, path: str) -> None:
    assert "database_unavailable" in _codes(DOCUMENT["paths"][path][method], 503)
