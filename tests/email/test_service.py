"""Enqueueing email into the outbox: rendering, transaction boundaries, wake-up."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase
from townsquare.db import commit, transaction
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail
from townsquare.email.service import InvalidEmailAddress, enqueue_email
from townsquare.email.templates import UnknownEmailTemplate
from townsquare.worker import signals


async def _count(session: AsyncSession) -> int:
    return (await session.scalar(select(func.count()).select_from(OutboxEmail))) or 0


class TestEnqueueEmail:
    async def test_renders_subject_text_and_html(self, session: AsyncSession) -> None:
        email = await enqueue_email(
            session, to="ada@example.org", template="test", context={"sent_by": "<Ada & co>"}
        )
        assert email.status == EmailStatus.pending
        assert email.attempts == 0
        assert email.to_address == "ada@example.org"
        assert email.subject == "Townsquare test email"
        assert "sent by <Ada & co>" in email.text_body
        assert email.html_body is not None
        assert "sent by &lt;Ada &amp; co&gt;" in email.html_body
        assert email.html_body.lstrip().startswith("<!DOCTYPE html>")
        assert email.message_id.startswith("<")
        assert email.message_id.endswith(">")
        assert "@" in email.message_id
        stored = await session.get(OutboxEmail, email.id)
        assert stored is not None

    async def test_message_ids_are_unique(self, session: AsyncSession) -> None:
        first = await enqueue_email(session, to="a@example.org", template="test", context={})
        second = await enqueue_email(session, to="a@example.org", template="test", context={})
        assert first.message_id != second.message_id

    async def test_rolled_back_transaction_leaves_no_email(self, db: RolledBackDatabase) -> None:
        async def failing_business_change() -> None:
            async with transaction(db) as session:
                await enqueue_email(session, to="ada@example.org", template="test", context={})
                raise RuntimeError("the business change failed")

        with pytest.raises(RuntimeError):
            await failing_business_change()
        async with transaction(db) as session:
            assert await _count(session) == 0

    async def test_committed_transaction_keeps_email_and_wakes_worker(
        self, db: RolledBackDatabase
    ) -> None:
        listener = signals.subscribe()
        try:
            session = db.session()
            await enqueue_email(session, to="ada@example.org", template="test", context={})
            assert not listener.event.is_set()
            await commit(session)
            assert listener.event.is_set()
            assert listener.take() == (False, {"email.deliver"})
            await session.close()
        finally:
            signals.unsubscribe(listener)
        async with transaction(db) as check:
            assert await _count(check) == 1

    async def test_unknown_template_refused(self, session: AsyncSession) -> None:
        with pytest.raises(UnknownEmailTemplate):
            await enqueue_email(session, to="a@example.org", template="nope", context={})

    @pytest.mark.parametrize(
        "address",
        ["", "not-an-address", "a@example.org\r\nBcc: x@evil.test", "A <a@example.org>", "a@b,c@d"],
    )
    async def test_bad_address_refused(self, session: AsyncSession, address: str) -> None:
        with pytest.raises(InvalidEmailAddress):
            await enqueue_email(session, to=address, template="test", context={})
        assert await _count(session) == 0
