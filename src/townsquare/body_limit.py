"""Request bodies are limited while they are read: 413 `payload_too_large`, nothing buffered.

Every HTTP request's body is bounded by `MAX_JSON_BODY_BYTES` unless its endpoint is marked
with `@bounds_its_own_body`: the uploads, which stream their bytes to storage and stop at
their own limits (`MEDIA_MAX_BYTES`, `SUPPORT_ATTACHMENT_MAX_BYTES`, a signed `max_bytes`).

The limit is chosen on the endpoint's first read of the body, once the router has matched
it (the router puts the endpoint in the scope). A declared `Content-Length` over the limit
is refused then, before a byte is read; a body without one (chunked) is counted as its
`http.request` messages arrive and refused as soon as the count passes the limit. The
server drops whatever the client goes on sending, so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from townsquare.errors import problem

_OWN_LIMIT_ATTRIBUTE = "__townsquare_bounds_its_own_body__"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def bounds_its_own_body(endpoint: Endpoint) -> Endpoint:
    """Mark an endpoint that reads `request.stream()` and stops at a limit of its own."""
    setattr(endpoint, _OWN_LIMIT_ATTRIBUTE, True)
    return endpoint


class BodyTooLarge(HTTPException):
    """Raised from `receive()`; an HTTPException, so FastAPI's body reading passes it on."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body may be at most {limit} bytes.")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _LimitedRequest(self.max_bytes, scope, receive, send).run(self.app)


class _LimitedRequest:
    """One request's count of body bytes and whether the app's answer must become 413."""

    def __init__(self, max_bytes: int, scope: Scope, receive: Receive, send: Send) -> None:
        self.limit: int | None = max_bytes
        self.scope = scope
        self._receive = receive
        self._send = send
        self.first_read = True
        self.received = 0
        self.refused = False
        self.response_started = False
        self.answered = False

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except BodyTooLarge:
            if self.response_started:
                raise
            await self._answer()

    async def receive(self) -> Message:
        if self.first_read:
            self.first_read = False
            endpoint = self.scope.get("endpoint")
            if getattr(endpoint, _OWN_LIMIT_ATTRIBUTE, False):
                self.limit = None
            declared = _declared_length(self.scope)
            if self.limit is not None and declared is not None and declared > self.limit:
                self._refuse()
        message = await self._receive()
        if self.limit is not None and message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self._refuse()
        return message

    def _refuse(self) -> None:
        assert self.limit is not None
        self.refused = True
        raise BodyTooLarge(self.limit)

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            if self.refused:
                # Whatever the app made of the refused body (an endpoint may have caught
                # the error and answered otherwise), the client is told it was too large.
                await self._answer()
                return
            self.response_started = True
        await self._send(message)

    async def _answer(self) -> None:
        assert self.limit is not None
        self.answered = True
        self.response_started = True
        response = problem(
            413,
            "payload_too_large",
            "Payload too large",
            f"The request body may be at most {self.limit} bytes.",
            request=Request(self.scope),
        )
        await response(self.scope, self._receive, self._send)
