"""Lean routes: hot reads served without FastAPI's per-request machinery.

FastAPI's request handler is general: two exit stacks, a dependency solver that walks every
parameter kind, a placeholder `Response` for dependencies, body reading, telemetry hooks;
and before it, Starlette's exception middleware, an exit stack for uploaded files and the
router's walk. For an endpoint that takes only path and query parameters and answers its
own `Response` (the public reads), that machinery costs more than the endpoint's own work.

`LeanRoute` validates those parameters in one pydantic call and awaits the endpoint. It is
still an `APIRoute`: the OpenAPI document comes from the same signature, and a request
whose parameters do not validate goes through FastAPI's own handler, so its 422 reads
exactly as on every other route. `LeanRoutes`, the innermost user middleware, answers the
app's leading lean routes before the rest of the stack (inside the request id, the access
log, the error backstop and CORS); anything it does not answer itself (another method, a
422, a path of another route) goes down the stack unchanged. It also turns every HEAD
request into the GET it stands for, answered without its body (`head_as_get`).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from enum import Enum
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError, create_model
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SCALARS = (str, int, float, bool, uuid.UUID, NoneType)


class LeanRoute(APIRoute):
    """An `APIRoute` whose endpoint is a coroutine taking the `Request` (optional) and path
    and query parameters of single values only, and returning a `Response`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        name = getattr(endpoint, "__name__", repr(endpoint))
        dependant = self.dependant
        if not inspect.iscoroutinefunction(endpoint) or any(
            (
                dependant.dependencies,
                dependant.header_params,
                dependant.cookie_params,
                dependant.body_params,
                dependant.websocket_param_name,
                dependant.http_connection_param_name,
                dependant.response_param_name,
                dependant.background_tasks_param_name,
                dependant.security_scopes_param_name,
            )
        ):
            raise TypeError(
                f"{name}: a LeanRoute endpoint is a coroutine taking the request "
                "and path and query parameters only"
            )
        fields: dict[str, Any] = {}
        for field in (*dependant.path_params, *dependant.query_params):
            if not _is_scalar(field.field_info.annotation):
                raise TypeError(f"{name}: {field.name} is not a single plain value")
            fields[field.name] = (field.field_info.annotation, field.field_info)
        self._path_params = tuple(f.alias for f in dependant.path_params)
        self._query_params = tuple(f.alias for f in dependant.query_params)
        params: type[BaseModel] = create_model(f"{name}_params", **fields)
        self._validate = params.__pydantic_validator__.validate_python
        self._request_name = dependant.request_param_name
        self._call = endpoint
        self._fastapi_app = self.app
        self.app = self._lean_app

    def arguments(self, scope: Scope, receive: Receive, send: Send) -> dict[str, Any] | None:
        """The endpoint's keyword arguments for a matched request; None when its parameters
        do not validate (FastAPI's handler answers those)."""
        path_params = scope["path_params"]
        values: dict[str, Any] = {alias: path_params[alias] for alias in self._path_params}
        if self._query_params and scope["query_string"]:
            # The parsing `request.query_params` does: a repeated name keeps its last value.
            query = QueryParams(scope["query_string"])
            for alias in self._query_params:
                value = query.get(alias)
                if value is not None:
                    values[alias] = value
        try:
            arguments: dict[str, Any] = dict(self._validate(values).__dict__)
        except ValidationError:
            return None
        if self._request_name is not None:
            arguments[self._request_name] = Request(scope, receive, send)
        return arguments

    async def respond(self, arguments: dict[str, Any]) -> Response:
        response: Response = await self._call(**arguments)
        return response

    async def _lean_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The route's ASGI app when the router dispatches to it (not through `LeanRoutes`).
        arguments = self.arguments(scope, receive, send)
        if arguments is None:
            await self._fastapi_app(scope, receive, send)
            return
        response = await self.respond(arguments)
        await response(scope, receive, send)


class LeanRoutes:
    """Answers requests for the lean routes at the head of the app's route list, ahead of
    the rest of the middleware stack and the router. Add it first (innermost).

    Only the leading lean routes: a route registered before them keeps its precedence. An
    exception the endpoint raises is answered by the app's handler for it, as Starlette's
    exception middleware would; one without a handler propagates to the outer middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[LeanRoute] = []
        self._seen: list[BaseRoute] | None = None
        self._seen_count = -1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] == "HEAD":
                scope, send = head_as_get(scope, send)
            for route in self._leading(scope):
                match, child_scope = route.matches(scope)
                if match is Match.NONE:
                    continue
                if match is Match.FULL:
                    scope.update(child_scope)
                    arguments = route.arguments(scope, receive, send)
                    if arguments is not None:
                        await self._respond(route, arguments, scope, receive, send)
                        return
                break
        await self.app(scope, receive, send)

    def _leading(self, scope: Scope) -> list[LeanRoute]:
        routes: list[BaseRoute] = scope["app"].router.routes
        if routes is not self._seen or len(routes) != self._seen_count:
            leading = []
            for route in routes:
                if not isinstance(route, LeanRoute):
                    break
                leading.append(route)
            self._routes, self._seen, self._seen_count = leading, routes, len(routes)
        return self._routes

    async def _respond(
        self,
        route: LeanRoute,
        arguments: dict[str, Any],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        try:
            response = await route.respond(arguments)
        except Exception as exc:
            handler = _handler_for(scope, exc)
            if handler is None:
                raise
            request = Request(scope, receive, send)
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)


def head_as_get(scope: Scope, send: Send) -> tuple[Scope, Send]:
    """A HEAD request as the GET it stands for, and a `send` that drops the body: every
    GET route answers HEAD with the GET's status and headers (its Content-Length too),
    and no route needs to declare HEAD (FastAPI routes do not, and would document a
    second operation each). The request's own scope keeps HEAD for the access log."""
    scope = {**scope, "method": "GET"}

    async def send_without_body(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
        elif not message.get("more_body", False):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return scope, send_without_body


def _handler_for(scope: Scope, exc: Exception) -> Callable[..., Any] | None:
    """The app's handler for `exc`, looked up as Starlette's exception middleware does
    (a handler for `Exception` or 500 belongs to the outermost error middleware)."""
    handlers: dict[Any, Callable[..., Any]] = scope["app"].exception_handlers
    if isinstance(exc, HTTPException) and exc.status_code != 500 and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is Exception:
            break
        if cls in handlers:
            return handlers[cls]
    return None


def _is_scalar(annotation: Any) -> bool:
    """A plain value (or an optional one), read from one query or path string."""
    union = get_origin(annotation) in (Union, UnionType)
    return all(
        choice in _SCALARS or (isinstance(choice, type) and issubclass(choice, Enum))
        for choice in (get_args(annotation) if union else (annotation,))
    )
