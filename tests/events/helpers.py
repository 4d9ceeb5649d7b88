"""Helpers of the events tests: paths, and events and shifts made over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.email.models import OutboxEmail
from townsquare.kit import clock

API = "/api/v1"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def in_days(days: float) -> datetime:
    """`days` from the start of the current hour (UTC)."""
    return clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=days)


def events_url(slug: str) -> str:
    return f"{API}/orgs/{slug}/events"


async def make_event(
    client: httpx.AsyncClient,
    slug: str,
    *,
    starts_at: datetime | None = None,
    hours: float = 12,
    status: str = "published",
    **fields: Any,
) -> dict[str, Any]:
    start = starts_at or in_days(7)
    body = {
        "title": "Summer fair",
        "location": "Town hall",
        "starts_at": iso(start),
        "ends_at": iso(start + timedelta(hours=hours)),
        "status": status,
        **fields,
    }
    response = await client.post(events_url(slug), json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def make_shift(
    client: httpx.AsyncClient,
    slug: str,
    event: dict[str, Any],
    *,
    offset_hours: float = 0,
    hours: float = 3,
    capacity: int = 2,
    title: str = "Bar",
    **fields: Any,
) -> dict[str, Any]:
    start = datetime.fromisoformat(event["starts_at"]) + timedelta(hours=offset_hours)
    body = {
        "title": title,
        "starts_at": iso(start),
        "ends_at": iso(start + timedelta(hours=hours)),
        "capacity": capacity,
        **fields,
    }
    response = await client.post(f"{events_url(slug)}/{event['id']}/shifts", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def signups_url(slug: str, shift: dict[str, Any]) -> str:
    return f"{events_url(slug)}/{shift['event_id']}/shifts/{shift['id']}/signups"


def shift_url(slug: str, shift: dict[str, Any]) -> str:
    return f"{events_url(slug)}/{shift['event_id']}/shifts/{shift['id']}"


async def emails_to(session: AsyncSession, address: str, template: str) -> list[OutboxEmail]:
    rows = await session.scalars(
        select(OutboxEmail)
        .where(OutboxEmail.to_address == address, OutboxEmail.template == template)
        .order_by(OutboxEmail.created_at, OutboxEmail.id)
    )
    return list(rows.all())


def problem_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    code: str = response.json()["code"]
    return code
