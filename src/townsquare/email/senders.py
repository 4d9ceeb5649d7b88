"""Email senders, one per EMAIL_BACKEND: console, file, smtp, ses.

A sender delivers one MIME message and returns the provider's id for it, or raises
`DeliveryError` saying whether trying again later may help. A sender may keep a
connection open between messages of a batch; `aclose()` releases it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from contextlib import AsyncExitStack
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib

from townsquare.config import Settings

logger = logging.getLogger("townsquare.email")

ERROR_TEXT_MAX = 500


class DeliveryError(Exception):
    """The message was not delivered. `permanent`: the provider refused it for good."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class EmailSender(Protocol):
    name: str
    timeout_seconds: float
    """How long one `send` may take at most; the worker's lease must outlast it."""

    async def send(self, message: EmailMessage) -> str:
        """Deliver `message`; return the provider's message id."""
        ...

    async def aclose(self) -> None: ...


def _recipients(message: EmailMessage) -> list[str]:
    return [str(a) for a in message.get_all("To", [])]


def _needs_smtputf8(message: EmailMessage) -> bool:
    return not "".join(_recipients(message)).isascii()


SMTPUTF8_MISSING = (
    "the provider does not offer SMTPUTF8, which an address with non-ASCII characters "
    "before the @ needs"
)


class ConsoleSender:
    """Logs every message (development): nothing leaves the machine."""

    name = "console"
    timeout_seconds = 5.0

    async def send(self, message: EmailMessage) -> str:
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if isinstance(body, EmailMessage) else ""
        logger.info(
            "email to %s: %s\n%s",
            ", ".join(_recipients(message)),
            message["Subject"],
            text,
            extra={"message_id": message["Message-ID"]},
        )
        return str(message["Message-ID"])

    async def aclose(self) -> None:
        return None


class FileSender:
    """Writes every message as an `.eml` file under EMAIL_FILE_DIR (development, tests)."""

    name = "file"
    timeout_seconds = 10.0

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage) -> str:
        return await asyncio.to_thread(self._write, message)

    def _write(self, message: EmailMessage) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9._-]", "", str(message["Message-ID"]).split("@")[0])
        path = self.directory / f"{stem or 'message'}.eml"
        partial = path.with_suffix(".eml.part")
        try:
            partial.write_bytes(message.as_bytes())
            os.replace(partial, path)
        except OSError as exc:
            raise DeliveryError(f"cannot write {path.name}: {exc.strerror or exc}") from exc
        return path.name

    async def aclose(self) -> None:
        return None


_QUEUED_AS = re.compile(r"queued as\s+(\S+)", re.IGNORECASE)
# 5xx answers that say our credentials or setup are wrong, not the message: keep retrying.
_CONFIGURATION_CODES = frozenset({530, 534, 535, 538})


class SmtpSender:
    """Delivers through an SMTP relay, one connection reused for the whole batch."""

    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout_seconds = settings.SMTP_TIMEOUT * 2
        self._client: aiosmtplib.SMTP | None = None

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.SMTP_HOST,
            port=s.SMTP_PORT,
            username=s.SMTP_USERNAME or None,
            password=s.SMTP_PASSWORD or None,
            timeout=s.SMTP_TIMEOUT,
            use_tls=s.SMTP_TLS == "implicit",
            start_tls=s.SMTP_TLS == "starttls",
        )

    async def send(self, message: EmailMessage) -> str:
        try:
            if self._client is None or not self._client.is_connected:
                self._client = self._new_client()
                await self._client.connect()
            _errors, response = await self._client.send_message(message)
        except aiosmtplib.SMTPNotSupported as exc:
            await self._drop()
            if _needs_smtputf8(message):
                raise DeliveryError(f"SMTP: {SMTPUTF8_MISSING}", permanent=True) from exc
            raise DeliveryError(f"SMTP {type(exc).__name__}: {exc}") from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await self._drop()
            codes = [r.code for r in exc.recipients]
            text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise DeliveryError(
                f"SMTP recipient refused: {text}",
                permanent=bool(codes) and all(500 <= c < 600 for c in codes),
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            await self._drop()
            permanent = 500 <= exc.code < 600 and exc.code not in _CONFIGURATION_CODES
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                permanent = False
            raise DeliveryError(f"SMTP {exc.code} {exc.message}", permanent=permanent) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._drop()
            raise DeliveryError(f"SMTP {type(exc).__name__}: {exc}") from exc
        match = _QUEUED_AS.search(response)
        return match.group(1) if match else response.strip()

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


# SES v2 error codes that refuse this message for good; anything else may pass later
# (throttling, a paused account, an unverified sender being fixed, a network error).
_SES_PERMANENT = frozenset({"MessageRejected", "BadRequestException", "InvalidParameterValue"})


class SesSender:
    """Delivers through Amazon SES (API v2 SendEmail with the raw MIME message)."""

    name = "ses"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout_seconds = settings.SES_TIMEOUT * 2
        self._stack: AsyncExitStack | None = None
        self._client: Any = None

    async def _get_client(self) -> Any:
        if self._client is None:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import get_session

            s = self.settings
            stack = AsyncExitStack()
            self._client = await stack.enter_async_context(
                get_session().create_client(
                    "sesv2",
                    region_name=s.SES_REGION,
                    endpoint_url=s.SES_ENDPOINT_URL or None,
                    aws_access_key_id=s.SES_ACCESS_KEY_ID or None,
                    aws_secret_access_key=s.SES_SECRET_ACCESS_KEY or None,
                    config=AioConfig(
                        connect_timeout=s.SES_TIMEOUT,
                        read_timeout=s.SES_TIMEOUT,
                        retries={"max_attempts": 1, "mode": "standard"},
                    ),
                )
            )
            self._stack = stack
        return self._client

    async def send(self, message: EmailMessage) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        if _needs_smtputf8(message):
            # SES takes 7-bit addresses only (IDNA domains are fine, no SMTPUTF8).
            raise DeliveryError(f"SES: {SMTPUTF8_MISSING}", permanent=True)
        request: dict[str, Any] = {
            "FromEmailAddress": str(message["From"]),
            "Destination": {"ToAddresses": _recipients(message)},
            "Content": {"Raw": {"Data": message.as_bytes()}},
        }
        if self.settings.SES_CONFIGURATION_SET:
            request["ConfigurationSetName"] = self.settings.SES_CONFIGURATION_SET
        try:
            client = await self._get_client()
            response = await client.send_email(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "ClientError"))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            permanent = code in _SES_PERMANENT and 400 <= status < 500
            raise DeliveryError(
                f"SES {code}: {error.get('Message', '')}".strip(), permanent=permanent
            ) from exc
        except (BotoCoreError, OSError, TimeoutError) as exc:
            await self.aclose()
            raise DeliveryError(f"SES {type(exc).__name__}: {exc}") from exc
        return str(response["MessageId"])

    async def aclose(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


def create_sender(settings: Settings) -> EmailSender:
    """The sender chosen by EMAIL_BACKEND."""
    backend = settings.EMAIL_BACKEND
    if backend == "console":
        return ConsoleSender()
    if backend == "file":
        return FileSender(Path(settings.EMAIL_FILE_DIR))
    if backend == "smtp":
        return SmtpSender(settings)
    if backend == "ses":
        return SesSender(settings)
    raise ValueError(f"unknown EMAIL_BACKEND {backend!r}")


def redact(text: str, settings: Settings) -> str:
    """`text` without any configured secret, shortened to fit `last_error`."""
    for secret in (settings.SMTP_PASSWORD, settings.SES_SECRET_ACCESS_KEY, settings.SECRET_KEY):
        if secret:
            text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    return text if len(text) <= ERROR_TEXT_MAX else text[: ERROR_TEXT_MAX - 1] + "…"
