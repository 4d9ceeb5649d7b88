"""Request ids, one access log line per request, and the last line of defence against 500s."""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from townsquare.db_outages import database_unavailable, is_database_outage
from townsquare.errors import problem

access_logger = logging.getLogger("townsquare.access")
error_logger = logging.getLogger("townsquare.errors")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _loggable_path(scope: Scope) -> str:
    """The request path, with the route template instead when the path carries a secret."""
    route_path = getattr(scope.get("route"), "path", "")
    if "{token}" in route_path:
        return str(route_path)
    return str(scope["path"])


def _request_id(scope: Scope) -> str:
    """The caller's `X-Request-ID` (the last one sent) when sane, else 32 random hex
    digits (random bytes without building a UUID object: this runs on every request)."""
    incoming = b""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            incoming = value
    text: str = incoming.decode("latin-1")
    return text if _VALID_REQUEST_ID.match(text) else os.urandom(16).hex()


class RequestContextMiddleware:
    """Gives every request an id (taken from `X-Request-ID` when sane), logs it, catches errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if scope["type"] != "http" or response_started:
                raise
            from starlette.requests import Request

            request = Request(scope)
            if is_database_outage(exc):
                error_logger.error(
                    "database unavailable: %s", type(exc).__name__, extra={"request_id": request_id}
                )
                # The same answer the transactional routes give (db_outages.py).
                outage = database_unavailable()
                response = problem(
                    outage.status,
                    outage.code,
                    outage.title,
                    outage.detail,
                    request=request,
                    headers=outage.headers,
                )
            else:
                error_logger.exception("unhandled error", extra={"request_id": request_id})
                response = problem(
                    500,
                    "internal_error",
                    "Internal server error",
                    "Something went wrong on our side. Quote the request id when reporting it.",
                    request=request,
                )
            await response(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http" and access_logger.isEnabledFor(logging.INFO):
                path = _loggable_path(scope)
                access_logger.info(
                    "%s %s %s",
                    scope["method"],
                    path,
                    status,
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )
