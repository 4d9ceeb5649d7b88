"""Support stats over a constructed history: volume, medians, ratings, day boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from tests.support.conftest import Desk
from tests.support.test_conversations import problem

DAY1 = datetime(2026, 3, 10, tzinfo=UTC)


async def history(desk: Desk, clock: ModuleType) -> None:
    """Day 0: C5 opens (resolved on day 2). Day 1: C1, C2 answered, resolved, rated.
    Day 2: C3 answered, C4 never; C5 resolved. Day 3: C6 opens (outside the range)."""

    async def at(when: datetime) -> None:
        clock.freeze(when)

    async def conversation(opened: datetime, reply_after: int | None) -> str:
        await at(opened)
        c = await desk.open()
        if reply_after is not None:
            await at(opened + timedelta(seconds=reply_after))
            await desk.send("agent", c["id"], "On it")
        cid: str = c["id"]
        return cid

    async def resolve(cid: str, when: datetime, rating: int | None = None) -> None:
        await at(when)
        assert (await desk.act("agent", cid, "resolve")).status_code == 200
        if rating is not None:
            assert (await desk.act("customer", cid, "rating", rating=rating)).status_code == 200

    c5 = await conversation(DAY1 - timedelta(hours=12), reply_after=30)
    c1 = await conversation(DAY1 + timedelta(hours=10), reply_after=60)
    c2 = await conversation(DAY1 + timedelta(hours=11), reply_after=300)
    await resolve(c1, DAY1 + timedelta(hours=11), rating=5)
    await resolve(c2, DAY1 + timedelta(hours=13), rating=3)
    await conversation(DAY1 + timedelta(days=1, hours=9), reply_after=120)
    await conversation(DAY1 + timedelta(days=1, hours=10), reply_after=None)
    await resolve(c5, DAY1 + timedelta(days=1, hours=12))
    await conversation(DAY1 + timedelta(days=2, hours=1), reply_after=10)
    # A resolution undone by a reopen does not count.
    c7 = await conversation(DAY1 + timedelta(days=1, hours=13), reply_after=None)
    await resolve(c7, DAY1 + timedelta(days=1, hours=14))
    await desk.send("customer", c7, "Not yet")


async def stats(desk: Desk, who: str = "agent", **params: str) -> dict[str, Any]:
    response = await desk.clients[who].get(desk.url("/support/stats"), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestStats:
    async def test_figures_of_a_range(self, desk: Desk, clock: ModuleType) -> None:
        await history(desk, clock)

        found = await stats(desk, **{"from": "2026-03-10", "to": "2026-03-11"})

        assert found == {
            "from": "2026-03-10",
            "to": "2026-03-11",
            "opened": 5,
            "resolved": 3,
            "median_first_response_seconds": 120.0,
            "median_resolution_seconds": 7200.0,
            "rating_average": 4.0,
            "rating_count": 2,
        }

    async def test_one_day_and_an_empty_range(self, desk: Desk, clock: ModuleType) -> None:
        await history(desk, clock)
        day1 = await stats(desk, **{"from": "2026-03-10", "to": "2026-03-10"})
        assert (day1["opened"], day1["resolved"], day1["median_first_response_seconds"]) == (
            2,
            2,
            180.0,
        )
        empty = await stats(desk, **{"from": "2025-01-01", "to": "2025-01-31"})
        assert empty["opened"] == empty["resolved"] == empty["rating_count"] == 0
        assert empty["median_first_response_seconds"] is None
        assert empty["rating_average"] is None

    async def test_days_are_the_organizations(
        self, desk: Desk, clock: ModuleType, session: Any
    ) -> None:
        desk.org.timezone = "America/New_York"
        await session.flush()
        await history(desk, clock)
        # 2026-03-09 in New York ends at 04:00 UTC on the 10th: only C5 (opened the 9th
        # at 12:00 UTC) falls in it.
        found = await stats(desk, **{"from": "2026-03-09", "to": "2026-03-09"})
        assert found["opened"] == 1

    async def test_default_range_and_bad_ranges(self, desk: Desk, clock: ModuleType) -> None:
        clock.freeze(DAY1)
        default = await stats(desk)
        assert (default["from"], default["to"]) == ("2026-02-09", "2026-03-10")
        for params in (
            {"from": "2026-03-10", "to": "2026-03-09"},
            {"from": "2024-01-01", "to": "2026-01-01"},
            {"from": "yesterday"},
        ):
            response = await desk.clients["agent"].get(desk.url("/support/stats"), params=params)
            assert response.status_code == 422, params

    async def test_agents_only(self, desk: Desk) -> None:
        problem(
            await desk.clients["member"].get(desk.url("/support/stats")), 403, "permission_denied"
        )
        assert (await stats(desk, "owner"))["opened"] == 0
