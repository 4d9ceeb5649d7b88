"""Townsquare with the public CMS routes registered flat on the app, ahead of the rest.

Since FastAPI 0.137, `include_router` keeps each included router as a nested node; every
request then re-walks the router tree (`_get_routes_version` over every route of the app,
several times per request) before it reaches its route, and the walk grows with every
route added anywhere. Registering the hot public routes directly on the app's router, first,
lets a public read match on its first route check. Proposed for `main.py`; here the routes
are added next to the nested ones (the flat copies, first, answer; they are left out of the
OpenAPI so the document does not list them twice).

    .venv/bin/python bench/cms_public.py --variant flat=bench/variants/flat_public_routes.py
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from townsquare.cms.public_router import router as public_router
from townsquare.main import API_PREFIX
from townsquare.main import app_from_env as townsquare_app


def flatten_public_routes(app: FastAPI) -> FastAPI:
    nested = list(app.router.routes)
    for route in public_router.routes:
        assert isinstance(route, APIRoute)
        app.router.add_api_route(
            API_PREFIX + route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            responses=route.responses,
            methods=route.methods,
            name=route.name,
            response_class=route.response_class,
            include_in_schema=False,
            route_class_override=type(route),
        )
    flat = [route for route in app.router.routes if route not in nested]
    app.router.routes[:] = flat + nested
    return app


def app_from_env() -> FastAPI:
    return flatten_public_routes(townsquare_app())
