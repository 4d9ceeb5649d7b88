"""Each operation's documented errors are derived from the code behind it (openapi_errors).

A small app whose endpoints raise known errors in the ways Townsquare's routes do: directly,
through a package helper, handed to `flush_or_conflict`, through a guard dependency, through
a method of a dependency's object. Its document must list each error under its status, with
the error's own code, and leave out what is only caught.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI

from tests.conftest import _client_for, make_settings
from townsquare import openapi_errors
from townsquare.auth.deps import CurrentUser
from townsquare.db import DbSession, TransactionalRoute, flush_or_conflict
from townsquare.errors import Conflict, Gone, NotFound, install_error_handlers
from townsquare.kit.pagination import decode_cursor
from townsquare.openapi import build_openapi
from townsquare.openapi_errors import errors_reached, follow_package
from townsquare.orgs.deps import OrgAdmin
from townsquare.ratelimit import Limiter


class WidgetNotFound(NotFound):
    code = "widget_not_found"
    title = "Widget not found"
    detail = "No such widget."


class WidgetTaken(Conflict):
    code = "widget_taken"
    title = "Widget taken"


class WidgetGone(Gone):
    code = "widget_gone"
    title = "Widget gone"


def _find_widget(name: str) -> str:
    if name != "known":
        raise WidgetNotFound()
    return name


router = APIRouter(route_class=TransactionalRoute)


@router.get("/widgets/{name}")
async def read_widget(name: str) -> dict[str, str]:
    return {"name": _find_widget(name)}


@router.get("/widgets")
async def list_widgets(cursor: str | None = None) -> list[str]:
    # Through a package helper: `decode_cursor` raises 400 `invalid_cursor`.
    if cursor is not None:
        decode_cursor(cursor)
    try:
        return [_find_widget("known")]
    except WidgetGone:  # caught, never answered
        return []


@router.post("/widgets")
async def create_widget(session: DbSession, user: CurrentUser) -> dict[str, str]:
    await flush_or_conflict(session, {"uq_widgets_name": WidgetTaken})
    return {"owner": str(user.id)}


@router.post("/orgs/{org}/widgets/{name}/rename")
async def rename_widget(ctx: OrgAdmin, limiter: Limiter, name: str) -> dict[str, str]:
    # `consume` is a method of the dependency's object: 429 `rate_limited`.
    await limiter.consume(("1/minute", ("rename", name)))
    return {"org": ctx.org.slug}


plain_router = APIRouter()


@plain_router.post("/anyone")
async def anyone() -> dict[str, str]:
    return {}


def _app() -> FastAPI:
    app = FastAPI()
    app.state.settings = make_settings(SESSION_COOKIE_NAME="widget_session")
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(plain_router)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


# This module's helpers are followed like the package's own.
follow_package(__name__)
DOCUMENT = _app().openapi()


def _codes(method: str, path: str, status: int) -> list[str]:
    response = DOCUMENT["paths"][path][method]["responses"].get(str(status))
    if response is None:
        return []
    schema = response["content"]["application/problem+json"]["schema"]
    codes: list[str] = schema["allOf"][1]["properties"]["code"]["enum"]
    return codes


def _statuses(method: str, path: str) -> set[str]:
    return set(DOCUMENT["paths"][path][method]["responses"])


class TestDerivedErrors:
    def test_an_error_raised_through_a_helper_function(self) -> None:
        assert _codes("get", "/widgets/{name}", 404) == ["widget_not_found"]
        description = DOCUMENT["paths"]["/widgets/{name}"]["get"]["responses"]["404"]
        assert "- `widget_not_found`: No such widget." in description["description"]

    def test_an_error_of_a_package_helper(self) -> None:
        assert _codes("get", "/widgets", 400) == ["invalid_cursor"]

    def test_a_caught_error_is_not_listed(self) -> None:
        assert "410" not in _statuses("get", "/widgets")

    def test_an_error_handed_to_flush_or_conflict(self) -> None:
        assert _codes("post", "/widgets", 409) == ["widget_taken"]

    def test_the_session_guard_and_csrf(self) -> None:
        assert _codes("post", "/widgets", 401) == ["not_authenticated"]
        assert _codes("post", "/widgets", 403) == ["csrf_failed"]

    def test_the_org_guard_and_a_method_of_a_dependency(self) -> None:
        path = "/orgs/{org}/widgets/{name}/rename"
        assert _codes("post", path, 404) == ["organization_not_found"]
        assert {"permission_denied", "module_disabled", "csrf_failed"} <= set(
            _codes("post", path, 403)
        )
        assert _codes("post", path, 429) == ["rate_limited"]

    def test_the_transaction_of_the_route_class(self) -> None:
        assert _codes("get", "/widgets/{name}", 503) == ["database_unavailable"]

    def test_validation_and_body_limit(self) -> None:
        assert _codes("get", "/widgets/{name}", 422) == ["validation_error"]
        assert "413" not in _statuses("get", "/widgets/{name}")

    def test_nothing_for_code_that_raises_nothing(self) -> None:
        assert _statuses("post", "/anyone") == {"200", "default"}
        assert "security" not in DOCUMENT["paths"]["/anyone"]["post"]


class TestSecurity:
    def test_the_cookie_scheme_names_the_session_cookie(self) -> None:
        scheme = DOCUMENT["components"]["securitySchemes"]["cookieAuth"]
        assert scheme["type"] == "apiKey"
        assert scheme["in"] == "cookie"
        assert scheme["name"] == "widget_session"

    def test_only_operations_that_need_a_session_require_it(self) -> None:
        assert DOCUMENT["paths"]["/widgets"]["post"]["security"] == [{"cookieAuth": []}]
        assert "security" not in DOCUMENT["paths"]["/widgets"]["get"]

    def test_the_csrf_header_on_unsafe_cookie_operations_only(self) -> None:
        def headers(method: str, path: str) -> list[dict[str, Any]]:
            parameters = DOCUMENT["paths"][path][method].get("parameters", [])
            return [p for p in parameters if p["in"] == "header"]

        (csrf,) = headers("post", "/widgets")
        assert csrf["name"] == "X-CSRF-Token"
        assert csrf["required"] is True
        assert headers("get", "/widgets") == []
        assert headers("post", "/anyone") == []


def _deep_a() -> None:
    _deep_b()


def _deep_b() -> None:
    _deep_c()


def _deep_c() -> None:
    raise WidgetGone()


class TestTheWalk:
    def test_it_follows_calls_down_to_its_depth_limit(self, monkeypatch: Any) -> None:
        assert errors_reached([(_deep_a, None)]) == {WidgetGone}
        monkeypatch.setattr(openapi_errors, "MAX_DEPTH", 1)
        assert errors_reached([(_deep_a, None)]) == set()

    async def test_the_answered_code_is_a_documented_one(self) -> None:
        async for client in _client_for(_app()):
            response = await client.get("/widgets/unknown")
            assert response.status_code == 404
            assert response.json()["code"] in _codes("get", "/widgets/{name}", 404)
            response = await client.get("/widgets", params={"cursor": "%%%"})
            assert response.status_code == 400
            assert response.json()["code"] in _codes("get", "/widgets", 400)
            served = (await client.get("/openapi.json")).json()
            assert json.dumps(served, sort_keys=True) == json.dumps(DOCUMENT, sort_keys=True)
