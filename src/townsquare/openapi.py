"""The OpenAPI document: errors as RFC 9457 problem+json, derived from the code; the session
cookie as a security scheme, and the CSRF header on the unsafe operations it guards.

Each operation documents, per status, the `code`s of every `AppError` its code can raise
(`openapi_errors.route_errors`), each error class describing itself (`AppError.describe`),
and its problem schema allows exactly those codes: an answer with a code the document does
not list fails the schema (the schemathesis suite checks every answer against it). What a
route declares in `responses=` stays, the derived codes added to it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from townsquare.auth.deps import (
    CSRF_HEADER,
    UNSAFE_METHODS,
    CsrfFailed,
    authenticate,
    require_authenticated,
)
from townsquare.config import Settings
from townsquare.errors import PROBLEM_JSON, AppError, ErrorDescription, PayloadTooLarge
from townsquare.openapi_errors import api_routes, route_dependencies, route_errors

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 9457 problem; clients switch on `code`.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable snake_case identifier."},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message", "code"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")
COOKIE_SCHEME = "cookieAuth"
# FastAPI's own answer to a request whose parameters or body do not validate.
_VALIDATION = ErrorDescription(422, "validation_error", "Validation error", None)
# The body limit (body_limit.py) answers before any route runs, for every body it reads;
# FastAPI answers a body it cannot parse as its media type with a plain 400.
_BODY_TOO_LARGE = PayloadTooLarge.describe()
_BODY_UNPARSABLE = ErrorDescription(400, "bad_request", "Bad request", "The body cannot be parsed.")
# What any operation may answer besides what it lists: a bug, logged with its request id.
_UNEXPECTED = ErrorDescription(500, "internal_error", "Internal error", "An unexpected error.")


def _is_error(status: str) -> bool:
    return status == "default" or status[:1] in {"4", "5"}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _codes_list(errors: Iterable[ErrorDescription]) -> str:
    return "\n".join(f"- `{error.code}`: {error.detail or error.title}" for error in errors)


def _error_response(
    status: int, errors: list[ErrorDescription], declared: dict[str, Any] | None
) -> dict[str, Any]:
    """One status's answer: the route's own description kept, then every code it can carry;
    the schema a Problem whose `code` is one of them."""
    codes = sorted({error.code for error in errors})
    described = [min(e for e in errors if e.code == code) for code in codes]
    own = (declared or {}).get("description")
    lead = own if own and own != _reason(status) else _reason(status)
    schema = {"allOf": [_PROBLEM_REF, {"properties": {"code": {"enum": codes}}}]}
    return {
        **(declared or {}),
        "description": f"{lead}\n\n{_codes_list(described)}",
        "content": {PROBLEM_JSON: {"schema": schema}},
    }


def _operation_errors(
    method: str, errors: set[type[AppError]], operation: dict[str, Any]
) -> dict[int, list[ErrorDescription]]:
    by_status: dict[int, list[ErrorDescription]] = defaultdict(list)
    for error in errors:
        if method not in UNSAFE_METHODS and issubclass(error, CsrfFailed):
            continue  # the CSRF and Origin checks run on unsafe methods only
        by_status[error.status].append(error.describe())
    responses = operation.get("responses", {})
    if "422" in responses:
        by_status[422].append(_VALIDATION)
    if "requestBody" in operation:
        by_status[_BODY_TOO_LARGE.status].append(_BODY_TOO_LARGE)
        by_status[_BODY_UNPARSABLE.status].append(_BODY_UNPARSABLE)
    return by_status


def _csrf_parameter(required: bool) -> dict[str, Any]:
    return {
        "name": CSRF_HEADER,
        "in": "header",
        "required": required,
        "description": (
            "The session's CSRF token (the `csrf_token` of sign-in, also in the CSRF "
            "cookie); required with the session cookie, else 403 `csrf_failed`."
        ),
        "schema": {"type": "string"},
    }


def _document_security(
    method: str, dependencies: list[Callable[..., Any]], operation: dict[str, Any]
) -> None:
    needs_session = require_authenticated in dependencies
    reads_session = needs_session or authenticate in dependencies
    if needs_session:
        operation["security"] = [{COOKIE_SCHEME: []}]
    elif reads_session:
        # Anonymous callers are served too (signing out without a session).
        operation["security"] = [{}, {COOKIE_SCHEME: []}]
    if reads_session and method in UNSAFE_METHODS:
        parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
        parameters.append(_csrf_parameter(required=needs_session))


def _document_route(route: Any, operations: dict[str, Any]) -> None:
    errors = route_errors(route)
    dependencies = route_dependencies(route)
    for method in route.methods or ():
        operation = operations.get(method.lower())
        if operation is None:
            continue
        _document_security(method, dependencies, operation)
        responses: dict[str, Any] = operation.setdefault("responses", {})
        for status, described in sorted(_operation_errors(method, errors, operation).items()):
            key = str(status)
            responses[key] = _error_response(status, described, responses.get(key))


def _security_scheme(settings: Settings) -> dict[str, Any]:
    return {
        "type": "apiKey",
        "in": "cookie",
        "name": settings.SESSION_COOKIE_NAME,
        "description": (
            "The session cookie set by sign-in (`POST /api/v1/auth/login`). Unsafe "
            f"requests that send it must also send `{CSRF_HEADER}`."
        ),
    }


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with derived errors, the cookie scheme and the CSRF header."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    paths: dict[str, Any] = document.get("paths", {})
    for route in api_routes(app.routes):
        if route.include_in_schema and route.path_format in paths:
            _document_route(route, paths[route.path_format])
    for path_item in paths.values():
        for operation in path_item.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status, response in responses.items():
                if _is_error(status) and PROBLEM_JSON not in response.get("content", {}):
                    response["content"] = _PROBLEM_CONTENT
            # Only the unexpected is left to `default`: an answer of a status the operation
            # does not list fails the schema instead of passing as "some error".
            responses["default"] = _error_response(500, [_UNEXPECTED], None)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_ERROR_SCHEMAS:
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    settings: Settings = app.state.settings
    components.setdefault("securitySchemes", {})[COOKIE_SCHEME] = _security_scheme(settings)
    app.openapi_schema = document
    return document
