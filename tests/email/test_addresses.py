"""Internationalized recipients (RFC 6531): accepted, and delivered where the provider can."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, make_settings
from tests.email.servers import SesServer, SmtpServer
from townsquare.email.delivery import deliver_batch
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail
from townsquare.email.service import InvalidEmailAddress, enqueue_email, normalize_address

LOCAL_UNICODE = "jürgen@example.org"
DOMAIN_UNICODE = "ada@bücher.de"


async def _enqueue(session: AsyncSession, to: str) -> OutboxEmail:
    row = await enqueue_email(session, to=to, template="test", context={"sent_by": "Ada"})
    await session.commit()
    return row


async def _reload(session: AsyncSession, row: OutboxEmail) -> OutboxEmail:
    fresh = await session.scalar(
        select(OutboxEmail)
        .where(OutboxEmail.id == row.id)
        .execution_options(populate_existing=True)
    )
    assert fresh is not None
    return fresh


@pytest.fixture
def plain_smtp_server() -> Iterator[SmtpServer]:
    """A relay that does not offer SMTPUTF8."""
    server = SmtpServer(smtputf8=False).start()
    try:
        yield server
    finally:
        server.stop()


class TestAccepted:
    @pytest.mark.parametrize("address", [LOCAL_UNICODE, DOMAIN_UNICODE, "用户@例子.广告"])
    async def test_enqueued_as_given(self, session: AsyncSession, address: str) -> None:
        row = await _enqueue(session, address)
        assert (await _reload(session, row)).to_address == address

    @pytest.mark.parametrize(
        "address",
        ["jürgen@", "@bücher.de", "jür gen@example.org", "jürgen@bü..de", "jürgen@-bü.de"],
    )
    def test_malformed_refused_without_repeating_the_address(self, address: str) -> None:
        with pytest.raises(InvalidEmailAddress) as refused:
            normalize_address(address)
        assert address not in str(refused.value)
        assert refused.value.__cause__ is None


class TestSmtp:
    async def test_non_ascii_local_part_goes_out_with_smtputf8(
        self, db: RolledBackDatabase, session: AsyncSession, smtp_server: SmtpServer
    ) -> None:
        row = await _enqueue(session, LOCAL_UNICODE)

        assert await deliver_batch(db, make_settings(**smtp_server.settings()), worker_id="t") == 1

        assert (await _reload(session, row)).status == EmailStatus.sent
        [(_, recipients)] = smtp_server.handler.envelopes
        assert recipients == [LOCAL_UNICODE]
        [message] = smtp_server.messages
        assert message["To"] == LOCAL_UNICODE
        assert message["Subject"] == "Townsquare test email"

    async def test_unicode_domain_goes_out_in_ascii(
        self, db: RolledBackDatabase, session: AsyncSession, plain_smtp_server: SmtpServer
    ) -> None:
        row = await _enqueue(session, DOMAIN_UNICODE)
        settings = make_settings(**plain_smtp_server.settings())

        assert await deliver_batch(db, settings, worker_id="t") == 1

        assert (await _reload(session, row)).status == EmailStatus.sent
        assert plain_smtp_server.handler.envelopes[0][1] == ["ada@xn--bcher-kva.de"]
        assert plain_smtp_server.messages[0]["To"] == "ada@xn--bcher-kva.de"

    async def test_relay_without_smtputf8_fails_for_good_and_says_why(
        self, db: RolledBackDatabase, session: AsyncSession, plain_smtp_server: SmtpServer
    ) -> None:
        row = await _enqueue(session, LOCAL_UNICODE)
        settings = make_settings(**plain_smtp_server.settings())

        assert await deliver_batch(db, settings, worker_id="t") == 1

        failed = await _reload(session, row)
        assert failed.status == EmailStatus.failed
        assert failed.attempts == 1
        assert failed.last_error is not None
        assert "SMTPUTF8" in failed.last_error
        assert plain_smtp_server.messages == []


class TestFileAndSes:
    async def test_eml_file_holds_the_address_in_utf8(
        self, db: RolledBackDatabase, session: AsyncSession, tmp_path: Path
    ) -> None:
        await _enqueue(session, LOCAL_UNICODE)
        settings = make_settings(EMAIL_BACKEND="file", EMAIL_FILE_DIR=tmp_path)

        assert await deliver_batch(db, settings, worker_id="t") == 1

        [path] = tmp_path.glob("*.eml")
        raw = path.read_bytes()
        assert f"To: {LOCAL_UNICODE}".encode() in raw
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        assert parsed["To"] == LOCAL_UNICODE

    async def test_ses_refuses_non_ascii_local_part_for_good(
        self, db: RolledBackDatabase, session: AsyncSession, ses_server: SesServer
    ) -> None:
        await ses_server.verify_identity("hello@example.org")
        settings = make_settings(EMAIL_FROM="hello@example.org", **ses_server.settings())
        refused = await _enqueue(session, LOCAL_UNICODE)
        idn = await _enqueue(session, DOMAIN_UNICODE)

        assert await deliver_batch(db, settings, worker_id="t") == 2

        failed = await _reload(session, refused)
        assert failed.status == EmailStatus.failed
        assert failed.last_error is not None
        assert "SMTPUTF8" in failed.last_error
        assert (await _reload(session, idn)).status == EmailStatus.sent
        [sent] = ses_server.sent_messages()
        assert set(sent.destinations) == {"ada@xn--bcher-kva.de"}
