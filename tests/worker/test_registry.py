"""Registering duties and waking the runner."""

from __future__ import annotations

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
    async def test_safe_without_runner(self) -> None:
        signals.request_wakeup()

    async def test_wakes_listener(self) -> None:
        listener = signals.subscribe()
        try:
            signals.request_wakeup()
            assert listener.event.is_set()
            assert listener.take() == (True, set())
            assert not listener.event.is_set()
        finally:
            signals.unsubscribe(listener)
