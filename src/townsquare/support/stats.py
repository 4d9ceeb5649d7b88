"""Support figures for a range of days: volume, response and resolution times, ratings."""

from __future__ import annotations

import statistics
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.errors import field_error
from townsquare.kit import clock
from townsquare.orgs.context import OrgContext
from townsquare.support import schemas
from townsquare.support.models import Conversation

DEFAULT_DAYS = 30
MAX_DAYS = 366


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def _median_seconds(pairs: list[tuple[datetime, datetime]]) -> float | None:
    durations = [(end - start).total_seconds() for start, end in pairs]
    return float(statistics.median(durations)) if durations else None


async def support_stats(
    session: AsyncSession, ctx: OrgContext, *, from_date: date | None, to_date: date | None
) -> schemas.SupportStats:
    """Figures of the days `from_date`..`to_date`, both included, in the organization's
    time zone (by default the last 30 days up to today). Medians are of the range's
    conversations: first response of those opened in it, resolution of those resolved
    in it (a reopened conversation counts when it is resolved again)."""
    zone = ZoneInfo(ctx.org.timezone)
    if to_date is None:
        to_date = clock.now().astimezone(zone).date()
    if from_date is None:
        from_date = to_date - timedelta(days=DEFAULT_DAYS - 1)
    if from_date > to_date:
        raise field_error("from", "Must not be after `to`.", "invalid_range")
    if (to_date - from_date).days >= MAX_DAYS:
        raise field_error("from", f"The range may span at most {MAX_DAYS} days.", "range_too_long")
    start = _day_start(from_date, zone)
    end = _day_start(to_date + timedelta(days=1), zone)
    org = Conversation.organization_id == ctx.org.id

    opened = (
        await session.execute(
            select(Conversation.created_at, Conversation.first_response_at).where(
                org, Conversation.created_at >= start, Conversation.created_at < end
            )
        )
    ).all()
    resolved = (
        await session.execute(
            select(Conversation.created_at, Conversation.resolved_at).where(
                org, Conversation.resolved_at >= start, Conversation.resolved_at < end
            )
        )
    ).all()
    rating_average, rating_count = (
        await session.execute(
            select(func.avg(Conversation.rating), func.count(Conversation.rating)).where(
                org, Conversation.rated_at >= start, Conversation.rated_at < end
            )
        )
    ).one()
    return schemas.SupportStats(
        from_=from_date,
        to=to_date,
        opened=len(opened),
        resolved=len(resolved),
        median_first_response_seconds=_median_seconds(
            [(created, first) for created, first in opened if first is not None]
        ),
        median_resolution_seconds=_median_seconds(
            [(created, done) for created, done in resolved if done is not None]
        ),
        rating_average=float(rating_average) if rating_average is not None else None,
        rating_count=int(rating_count or 0),
    )
