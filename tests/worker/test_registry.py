"""Registering duties and waking the runner."""

from __future__ import annotations

import asyncio

import pytest

from townsquare.worker import signals
from townsquare.worker.registry import DutyContext, duty, load_duties, registered_duties, unregister


class TestDutyRegistry:
    def test_email_delivery_is_registered(self) -> None:
        names = [d.name for d in load_duties()]
        assert "email.deliver" in names

    def test_register_and_refuse_duplicates(self) -> None:
        async def sweep(ctx: DutyContext) -> int:
            return 0

        async def other(ctx: DutyContext) -> int:
            return 0

        duty("tests.sweep", every_seconds=2)(sweep)
        try:
            assert any(
                d.name == "tests.sweep" and d.every_seconds == 2 for d in registered_duties()
            )
            with pytest.raises(ValueError, match="twice"):
                duty("tests.sweep", every_seconds=2)(other)
        finally:
            unregister("tests.sweep")
        assert all(d.name != "tests.sweep" for d in registered_duties())


class TestWakeup:
    async def test_a_runner_that_left_is_not_woken(self) -> None:
        left = signals.subscribe()
        signals.unsubscribe(left)
        signals.request_wakeup()  # no runner in this process now: a no-op, not an error
        assert not left.event.is_set()
        assert left.take() == (False, set())

    async def test_wakes_listener_from_another_thread(self) -> None:
        listener = signals.subscribe()
        try:
            await asyncio.to_thread(signals.request_wakeup, "email.deliver")
            await asyncio.wait_for(listener.event.wait(), 5)
            assert listener.take() == (False, {"email.deliver"})
        finally:
            signals.unsubscribe(listener)

    async def test_wakes_listener(self) -> None:
        listener = signals.subscribe()
        try:
            signals.request_wakeup()
            assert listener.event.is_set()
            assert listener.take() == (True, set())
            assert not listener.event.is_set()
        finally:
            signals.unsubscribe(listener)
