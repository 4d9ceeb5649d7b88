"""`LeanRoute`: a FastAPI route for hot reads, without FastAPI's per-request machinery.

FastAPI's request handler is general: two exit stacks, a dependency solver that walks every
parameter kind, a placeholder `Response` for dependencies, body reading, telemetry hooks.
For an endpoint that takes only the request and path and query parameters and answers
its own `Response` (the public reads), that machinery costs more than the endpoint's own
work. A `LeanRoute` validates those parameters in one pydantic call and awaits the
endpoint directly. It is still an `APIRoute`: the OpenAPI document comes from the same
signature, and a request whose parameters do not validate goes through FastAPI's own
handler, so its 422 reads exactly as on every other route. Exceptions the endpoint raises
reach the app's exception handlers as anywhere else.
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
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

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
        self._path_params = tuple((f.name, f.alias) for f in dependant.path_params)
        self._query_params = tuple(f.alias for f in dependant.query_params)
        params: type[BaseModel] = create_model(f"{name}_params", **fields)
        self._validate = params.__pydantic_validator__.validate_python
        self._request_name = dependant.request_param_name
        self._call = endpoint
        self._fastapi_app = self.app
        self.app = self._lean_app

    async def _lean_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        path_params = scope["path_params"]
        values: dict[str, Any] = {alias: path_params[alias] for _, alias in self._path_params}
        if self._query_params and scope["query_string"]:
            # The parsing `request.query_params` does: a repeated name keeps its last value.
            query = QueryParams(scope["query_string"])
            for alias in self._query_params:
                value = query.get(alias)
                if value is not None:
                    values[alias] = value
        try:
            params = self._validate(values)
        except ValidationError:
            await self._fastapi_app(scope, receive, send)
            return
        arguments = dict(params.__dict__)
        if self._request_name is not None:
            arguments[self._request_name] = Request(scope, receive, send)
        response = await self._call(**arguments)
        await response(scope, receive, send)


def _is_scalar(annotation: Any) -> bool:
    """A plain value (or an optional one), read from one query or path string."""
    union = get_origin(annotation) in (Union, UnionType)
    return all(
        choice in _SCALARS or (isinstance(choice, type) and issubclass(choice, Enum))
        for choice in (get_args(annotation) if union else (annotation,))
    )
