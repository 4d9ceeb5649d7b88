"""Townsquare with three platform-level changes, none of which touches an API:

1. the public CMS routes registered flat on the app (see flat_public_routes.py);
2. FastAPI's built-in OpenTelemetry checks off (`FastAPI(telemetry={"tracing": False,
   "metrics": False, "logs": False})`): Townsquare configures no OTel provider, yet every
   request asks the global providers whether one is configured;
3. `gc.collect(); gc.freeze()` once the app is built: the ~150,000 objects of the loaded
   app (SQLAlchemy metadata, FastAPI routes, pydantic schemas) leave the collector's
   generations, so a full collection no longer stalls the event loop for 100+ ms (it
   showed as the p99 of every request in flight).

    .venv/bin/python bench/cms_public.py --variant tuned=bench/variants/platform_tuned.py
"""

from __future__ import annotations

import gc

from fastapi import FastAPI
from flat_public_routes import flatten_public_routes

from townsquare.main import app_from_env as townsquare_app


def app_from_env() -> FastAPI:
    app = flatten_public_routes(townsquare_app())
    # In main.py this is `FastAPI(..., telemetry={...})`; here the built app's config.
    app._telemetry.update(tracing=False, metrics=False, logs=False)
    gc.collect()
    gc.freeze()
    return app
