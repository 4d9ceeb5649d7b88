"""Satisfaction ratings: the customer, once, only when resolved."""

from __future__ import annotations

from tests.support.conftest import Desk
from tests.support.test_conversations import problem


class TestRating:
    async def test_the_customer_rates_a_resolved_conversation_once(self, desk: Desk) -> None:
        c = await desk.open()
        problem(
            await desk.act("customer", c["id"], "rating", rating=5),
            409,
            "conversation_not_resolved",
        )
        await desk.act("agent", c["id"], "resolve")

        rated = await desk.act("customer", c["id"], "rating", rating=4, comment="Quick, thanks")

        assert rated.status_code == 200, rated.text
        assert (rated.json()["rating"], rated.json()["rating_comment"]) == (4, "Quick, thanks")
        assert rated.json()["rated_at"] is not None
        problem(await desk.act("customer", c["id"], "rating", rating=1), 409, "already_rated")
        assert (await desk.get("agent", c["id"]))["rating"] == 4

    async def test_only_the_customer_rates(self, desk: Desk) -> None:
        c = await desk.open()
        await desk.act("agent", c["id"], "resolve")
        problem(
            await desk.act("agent", c["id"], "rating", rating=5), 403, "only_the_customer_rates"
        )
        problem(
            await desk.act("customer2", c["id"], "rating", rating=5), 404, "conversation_not_found"
        )

    async def test_a_rating_is_1_to_5(self, desk: Desk) -> None:
        c = await desk.open()
        await desk.act("agent", c["id"], "resolve")
        for value in (0, 6, "five", None):
            response = await desk.act("customer", c["id"], "rating", rating=value)
            assert response.status_code == 422, value

    async def test_a_closed_conversation_is_not_rated(self, desk: Desk) -> None:
        c = await desk.open()
        await desk.act("agent", c["id"], "resolve")
        await desk.act("agent", c["id"], "close")
        problem(
            await desk.act("customer", c["id"], "rating", rating=5),
            409,
            "conversation_not_resolved",
        )
