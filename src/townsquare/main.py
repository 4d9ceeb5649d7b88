"""The application factory and its lifespan: database, bus, storage, mailer, worker."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from townsquare.api_docs import router as docs_router
from townsquare.auth.deps import allowed_origins
from townsquare.body_limit import BodyLimitMiddleware
from townsquare.cms.public_router import add_public_routes
from townsquare.config import Settings, get_settings
from townsquare.db import Database, SessionSource
from townsquare.errors import install_error_handlers
from townsquare.health.router import router as health_router
from townsquare.logs import configure_logging
from townsquare.middleware import RequestContextMiddleware
from townsquare.openapi import build_openapi
from townsquare.proxies import ForwardedClientMiddleware, TrustedProxies
from townsquare.ratelimit import close_rate_limiter
from townsquare.realtime.bus import create_bus, set_bus
from townsquare.realtime.rechecks import close_rechecks
from townsquare.routing import LeanRoutes
from townsquare.storage.factory import create_storage

API_PREFIX = "/api/v1"
# What is built, each with the paths that serve it (tests/platform/test_openapi_document.py
# checks every path named here is in the document, so the text cannot promise more).
API_DESCRIPTION = """\
A self-hostable backend for organizations: accounts, organizations with members and roles,
articles, media, events with volunteer shifts, and support chat.

- **Accounts**: registration, email verification, sign-in with a session cookie, password
  reset and change, sessions, email change, account deletion and export
  (`/api/v1/auth/`, `/api/v1/me/`); staff administration (`/api/v1/admin/users`).
- **Organizations**: members and roles, invitations, modules, ownership transfer, audit log
  (`/api/v1/orgs/{org}`, `/api/v1/invitations/{token}`).
- **Articles**: drafts with revisions, publishing and scheduling, categories and tags
  (`/api/v1/orgs/{org}/articles`, `/api/v1/orgs/{org}/categories`,
  `/api/v1/orgs/{org}/tags`); public reads and an Atom feed
  (`/api/v1/public/orgs/{org}/articles`, `/api/v1/public/orgs/{org}/feed.xml`).
- **Media**: an image library with direct uploads (`/api/v1/orgs/{org}/media`).
- **Events**: events, volunteer shifts, sign-ups and rosters
  (`/api/v1/orgs/{org}/events`, `/api/v1/public/orgs/{org}/events`), my shifts and their
  calendar feed (`/api/v1/me/shifts`, `/api/v1/me/shifts.ics`).
- **Support chat**: conversations, messages and attachments, canned responses, statistics
  (`/api/v1/orgs/{org}/conversations`, `/api/v1/orgs/{org}/canned-responses`,
  `/api/v1/orgs/{org}/support/stats`), live over a WebSocket (`/api/v1/ws`).

Errors are RFC 9457 problems (`application/problem+json`) with a stable `code`; each
operation lists the codes it can answer. Signed-in operations take the session cookie
(`cookieAuth`); unsafe ones also take the session's `X-CSRF-Token` header.
"""


def api_router() -> APIRouter:
    """Every versioned route of the API, mounted under /api/v1."""
    from townsquare.auth.router import admin_router as auth_admin_router
    from townsquare.auth.router import router as auth_router
    from townsquare.cms.router import router as cms_router
    from townsquare.events.public_router import router as events_public_router
    from townsquare.events.router import router as events_router
    from townsquare.events.signups_router import router as signups_router
    from townsquare.me.router import router as me_router
    from townsquare.me.shifts_router import router as me_shifts_router
    from townsquare.media.router import router as media_router
    from townsquare.orgs.router import router as orgs_router
    from townsquare.realtime.router import router as realtime_router
    from townsquare.storage.router import router as storage_router
    from townsquare.support.router import router as support_router

    router = APIRouter(prefix=API_PREFIX)
    router.include_router(auth_router)
    router.include_router(me_router)
    router.include_router(me_shifts_router)
    router.include_router(auth_admin_router)
    router.include_router(cms_router)
    router.include_router(events_router)
    router.include_router(signups_router)
    router.include_router(events_public_router)
    router.include_router(media_router)
    router.include_router(orgs_router)
    router.include_router(storage_router)
    router.include_router(support_router)
    router.include_router(realtime_router)
    return router


def create_app(
    settings: Settings | None = None, *, database: SessionSource | None = None
) -> FastAPI:
    """Build the ASGI app. Tests pass their own `database` (a rolled-back connection)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned: Database | None = None
        if database is None:
            owned = Database(settings)
            app.state.database = owned
        bus = create_bus(settings)
        set_bus(bus)
        app.state.bus = bus
        worker = None
        if settings.RUN_WORKER_IN_PROCESS:
            from townsquare.worker.runner import start_background

            worker = start_background(app.state.database, settings, storage=app.state.storage)
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await close_rechecks(app.state)
            await bus.close()
            set_bus(None)
            await close_rate_limiter(app)
            await app.state.storage.close()
            if owned is not None:
                await owned.dispose()

    app = FastAPI(
        title="Townsquare",
        version="0.1.0",
        description=API_DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,  # served by api_docs, from local assets
        redoc_url=None,
        lifespan=lifespan,
        # Townsquare configures no OpenTelemetry provider; without this every request
        # still asks the global providers whether one exists (measured on the hot path).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    # Made here, not in the lifespan, so an app driven without one still has it; clients
    # (the S3 connection) open on first use and close with the lifespan.
    app.state.storage = create_storage(settings)
    if database is not None:
        app.state.database = database
    install_error_handlers(app)
    # Innermost (middleware added later wraps it): answers the public reads' lean routes
    # inside the request id, access log and CORS, ahead of the router (see routing.py).
    app.add_middleware(LeanRoutes)
    # Inside CORS, so a 413 still carries the CORS headers a browser needs to read it.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.MAX_JSON_BODY_BYTES)
    # The origins the CSRF and WebSocket checks accept: PUBLIC_URL's and ALLOWED_ORIGINS.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=sorted(allowed_origins(settings)),
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(RequestContextMiddleware)
    if settings.TRUSTED_PROXIES:
        # Outermost: the access log, rate limits and sessions all see the forwarded client.
        app.add_middleware(
            ForwardedClientMiddleware, trusted=TrustedProxies(settings.TRUSTED_PROXIES)
        )
    # Flat on the app and ahead of every included router: the public reads are the hot
    # path, and an included router costs a walk of its tree per request (public_router).
    add_public_routes(app.router, API_PREFIX)
    app.include_router(health_router)
    app.include_router(docs_router)
    app.include_router(api_router())
    # The console's pages, after the API's routes so those keep precedence.
    from townsquare.web.router import add_console

    add_console(app)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """Entry point for uvicorn (`townsquare.main:app_from_env`, factory mode)."""
    settings = get_settings()
    configure_logging(json_lines=settings.json_logs, level=settings.LOG_LEVEL)
    app = create_app(settings)
    # The loaded app's long-lived objects (metadata, routes, schemas) leave the cyclic
    # collector's generations, so a full collection no longer stalls requests in flight.
    gc.collect()
    gc.freeze()
    return app
