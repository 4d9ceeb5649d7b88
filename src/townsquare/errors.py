"""The AppError hierarchy and the one handler that renders every error as problem+json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True, order=True)
class ErrorDescription:
    """What an error class answers, as the OpenAPI document lists it."""

    status: int
    code: str
    title: str
    detail: str | None


class AppError(Exception):
    """A domain error: carries its HTTP status, a stable `code` and a sentence for people."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    detail: str | None = None
    headers: dict[str, str] | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if detail is not None:
            self.detail = detail
        self.extra = extra or {}
        if headers is not None:
            self.headers = headers
        super().__init__(self.detail or self.title)

    @classmethod
    def describe(cls) -> ErrorDescription:
        """The status, code, title and default detail every instance of the class answers."""
        return ErrorDescription(cls.status, cls.code, cls.title, cls.detail)


class BadRequest(AppError):
    status = 400


class Unauthorized(AppError):
    status = 401
    code = "not_authenticated"
    title = "Not authenticated"
    detail = "Sign in to continue."


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Forbidden"
    detail = "You are not allowed to do this."


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"
    detail = "The resource does not exist."


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Gone(AppError):
    status = 410
    code = "gone"
    title = "Gone"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnprocessableEntity(AppError):
    status = 422
    code = "validation_error"
    title = "Validation error"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"
    detail = "Too many attempts; wait before trying again."

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"
    detail = "The service is temporarily unavailable; try again shortly."


def field_error(field: str, message: str, code: str = "invalid") -> UnprocessableEntity:
    """A 422 for one field, in the same shape as request validation errors."""
    err = UnprocessableEntity(f"{field}: {message}")
    err.extra = {"errors": [{"field": field, "message": message, "code": code}]}
    return err


_STATUS_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("not_authenticated", "Not authenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests"),
    503: ("service_unavailable", "Service unavailable"),
}


_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "request_id"})


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    request: Request | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://townsquare.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if request is not None:
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    if extra:
        # Extension members add to the problem; they never replace its standard members
        # (a domain error's `extra={"status": ...}` would otherwise break the body's schema).
        body.update((key, value) for key, value in extra.items() if key not in _STANDARD_MEMBERS)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] or parts
    return ".".join(parts)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem(
        exc.status,
        exc.code,
        exc.title,
        exc.detail,
        request=request,
        extra=exc.extra,
        headers=exc.headers,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": _location(err.get("loc", ())),
            "message": str(err.get("msg", "invalid")),
            "code": str(err.get("type", "invalid")),
        }
        for err in exc.errors()
    ]
    return problem(
        422,
        "validation_error",
        "Validation error",
        "The request has invalid fields.",
        request=request,
        extra={"errors": errors},
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _STATUS_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    if exc.status_code == 404:
        detail = "No such resource."
    return problem(
        exc.status_code,
        code,
        title,
        detail,
        request=request,
        headers=dict(exc.headers) if exc.headers else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
