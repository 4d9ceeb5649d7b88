"""Real servers for email tests: an aiosmtpd SMTP server and moto's SES (server mode)."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RecordingHandler:
    """Keeps every message it accepts; can be slow, or refuse some recipients."""

    def __init__(self, *, delay: float = 0.0, refuse: set[str] | None = None) -> None:
        self.delay = delay
        self.refuse = refuse or set()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        import asyncio

        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
            number = len(self.messages)
        if self.delay:
            await asyncio.sleep(self.delay)
        return f"250 2.0.0 Ok: queued as Q{number:06d}"

    def message_ids(self) -> list[str]:
        with self._lock:
            return [str(m["Message-ID"]) for m in self.messages]


class SmtpServer:
    """An SMTP server on 127.0.0.1 run in its own thread (aiosmtpd's Controller)."""

    def __init__(
        self,
        handler: RecordingHandler | None = None,
        port: int | None = None,
        *,
        smtputf8: bool = True,
    ) -> None:
        self.handler = handler or RecordingHandler()
        self.port = port or free_port()
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            ready_timeout=10,
            enable_SMTPUTF8=smtputf8,
        )
        self.running = False

    def start(self) -> SmtpServer:
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.handler.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.handler.messages)} of {count} messages arrived")
            time.sleep(0.02)

    def settings(self) -> dict[str, object]:
        return {"EMAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": self.port}


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


class SesServer:
    """moto's SES in server mode: a real HTTP endpoint on 127.0.0.1; what it received is
    read from moto's backend, which lives in this process."""

    region = "us-east-1"

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> SesServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def reset(self) -> None:
        import urllib.request

        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def sent_messages(self) -> list[Any]:
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        return list(ses_backends[DEFAULT_ACCOUNT_ID][self.region].sent_messages)

    async def verify_identity(self, identity: str) -> None:
        from aiobotocore.session import get_session

        async with get_session().create_client(
            "sesv2",
            region_name=self.region,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ) as client:
            await client.create_email_identity(EmailIdentity=identity)

    def settings(self) -> dict[str, object]:
        return {
            "EMAIL_BACKEND": "ses",
            "SES_REGION": self.region,
            "SES_ENDPOINT_URL": self.url,
            "SES_ACCESS_KEY_ID": "testing",
            "SES_SECRET_ACCESS_KEY": "testing-secret-key",
        }


@pytest.fixture(scope="session")
def _ses_server_process() -> Iterator[SesServer]:
    server = SesServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ses_server(_ses_server_process: SesServer) -> SesServer:
    _ses_server_process.reset()
    return _ses_server_process
