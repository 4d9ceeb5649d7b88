"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from townsquare.errors import ServiceUnavailable

router = APIRouter(tags=["health"])

READINESS_TIMEOUT_SECONDS = 3.0


class HealthStatus(BaseModel):
    status: str


class DatabaseUnreachable(ServiceUnavailable):
    code = "database_unavailable"
    detail = "The database is not reachable."


@router.get("/healthz", response_model=HealthStatus)
async def healthz() -> HealthStatus:
    """The process is alive and serving."""
    return HealthStatus(status="ok")


@router.get(
    "/readyz",
    response_model=HealthStatus,
    responses={503: {"description": "The database is not reachable"}},
)
async def readyz(request: Request) -> HealthStatus:
    """The process can reach its database."""
    session = request.app.state.database.session(write=False)
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        raise DatabaseUnreachable() from exc
    finally:
        # A dead connection may fail to close; the answer stands either way.
        with contextlib.suppress(Exception):
            await session.close()
    return HealthStatus(status="ok")
