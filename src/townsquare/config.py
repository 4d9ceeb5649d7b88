"""Every setting of Townsquare, read from `TOWNSQUARE_*` environment variables or `.env`."""

from __future__ import annotations

import string
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, Request
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-key-change-me"


class Environment(StrEnum):
    development = "development"
    production = "production"
    test = "test"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TOWNSQUARE_", env_file=".env", extra="ignore", case_sensitive=False
    )

    ENV: Environment = Environment.development
    DATABASE_URL: str = "sqlite+aiosqlite:///./var/townsquare.db"
    DATABASE_POOL_SIZE: int = 10
    DATABASE_MAX_OVERFLOW: int = 10
    SQLITE_BUSY_TIMEOUT_MS: int = 5000
    SECRET_KEY: str = DEVELOPMENT_SECRET_KEY
    PUBLIC_URL: str = "http://127.0.0.1:8000"
    ALLOWED_ORIGINS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    LOG_FORMAT: Literal["auto", "json", "text"] = "auto"
    LOG_LEVEL: str = "INFO"
    REDIS_URL: str | None = None
    # Every request body but the uploads' (bounded by their own settings below).
    MAX_JSON_BODY_BYTES: int = Field(default=1024 * 1024, ge=1)

    # Identity
    DEFAULT_TIMEZONE: str = "UTC"
    SESSION_COOKIE_NAME: str = "townsquare_session"
    SESSION_COOKIE_DOMAIN: str | None = None
    SESSION_COOKIE_SECURE: bool | None = None
    SESSION_IDLE_TIMEOUT_SECONDS: int = 7 * 24 * 3600
    SESSION_ABSOLUTE_TIMEOUT_SECONDS: int = 30 * 24 * 3600
    CSRF_COOKIE_NAME: str = "csrftoken"
    EMAIL_VERIFICATION_TTL_SECONDS: int = 48 * 3600
    PASSWORD_RESET_TTL_SECONDS: int = 3600
    # Links in identity emails; {public_url} and {token} are filled in. Point them at the
    # client app's pages that POST the token to /api/v1/auth/verify-email or reset-password.
    VERIFY_EMAIL_URL: str = "{public_url}/verify-email?token={token}"
    PASSWORD_RESET_URL: str = "{public_url}/reset-password?token={token}"
    ARGON2_TIME_COST: int = 2
    ARGON2_MEMORY_COST_KIB: int = 19 * 1024
    ARGON2_PARALLELISM: int = 1
    RATE_LIMIT_ENABLED: bool = True
    RATE_LIMIT_LOGIN: str = "10/minute"
    RATE_LIMIT_LOGIN_ACCOUNT: str = "5/minute"
    RATE_LIMIT_REGISTER: str = "10/hour"
    RATE_LIMIT_CHANGE_PASSWORD: str = "5/minute"
    RATE_LIMIT_PASSWORD_RESET: str = "5/hour"
    RATE_LIMIT_PASSWORD_RESET_ACCOUNT: str = "3/hour"
    RATE_LIMIT_VERIFY: str = "10/minute"

    # Organizations
    DEFAULT_MODULES: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["cms", "events", "support"]
    )
    INVITATION_TTL_SECONDS: int = 7 * 24 * 3600
    # Link in invitation emails; the client app's page previews with GET and accepts with
    # POST /api/v1/invitations/{token}[/accept].
    INVITATION_URL: str = "{public_url}/invitations/{token}"

    # CMS
    ARTICLE_REVISIONS_KEPT: int = 50
    # Public reads: `Cache-Control: public, max-age=..., stale-while-revalidate=...`.
    PUBLIC_CACHE_MAX_AGE_SECONDS: int = Field(default=60, ge=0)
    PUBLIC_CACHE_STALE_SECONDS: int = Field(default=300, ge=0)
    # The article's page on the public site, linked from the Atom feed; {public_url},
    # {org} and {slug} are filled in ({org} and {slug} must be there).
    PUBLIC_ARTICLE_URL: str = "{public_url}/o/{org}/articles/{slug}"

    @field_validator("PUBLIC_ARTICLE_URL")
    @classmethod
    def _public_article_url_placeholders(cls, value: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"not a URL template: {exc}") from None
        missing = {"org", "slug"} - names
        unknown = names - {"public_url", "org", "slug"}
        if missing or unknown:
            raise ValueError(
                "needs the placeholders {org} and {slug} (and may use {public_url})"
                + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
            )
        return value

    # Media and storage
    STORAGE: Literal["local", "s3"] = "local"
    MEDIA_DIR: Path = Path("./var/media")
    S3_BUCKET: str | None = None
    S3_REGION: str = "us-east-1"
    S3_ENDPOINT_URL: str | None = None
    S3_PUBLIC_ENDPOINT_URL: str | None = None
    S3_ACCESS_KEY_ID: str | None = None
    S3_SECRET_ACCESS_KEY: str | None = None
    MEDIA_MAX_BYTES: int = Field(default=50 * 1024 * 1024, ge=1)
    MEDIA_QUOTA_BYTES_PER_ORG: int = Field(default=1024**3, ge=0)
    MEDIA_URL_TTL_SECONDS: int = Field(default=900, ge=10, le=900)
    MEDIA_UPLOAD_TTL_SECONDS: int = Field(default=3600, ge=60)
    MEDIA_MAX_IMAGE_PIXELS: int = Field(default=50_000_000, ge=1)
    MEDIA_SVG_MAX_BYTES: int = Field(default=2 * 1024 * 1024, ge=1)

    # Support chat
    SUPPORT_ATTACHMENT_MAX_BYTES: int = Field(default=10 * 1024 * 1024, ge=1)
    # Resolve conversations whose customer has not answered an agent for this long (0: off).
    SUPPORT_AUTO_RESOLVE_HOURS: int = Field(default=0, ge=0)
    # Agent replies the customer has not read by then go out in one email notice.
    SUPPORT_EMAIL_NOTICE_DELAY_SECONDS: int = Field(default=120, ge=0)
    # The link back in that email: the client app's page of the conversation, which reads it
    # with GET /api/v1/orgs/{org_slug}/conversations/{conversation_id}[/messages].
    SUPPORT_CONVERSATION_URL: str = "{public_url}/o/{org_slug}/support/{conversation_id}"

    # Events and shifts
    # A volunteer may cancel their own signup until this many hours before the shift starts.
    EVENTS_CANCEL_DEADLINE_HOURS: float = Field(default=3, ge=0)
    # The reminder email goes out this many hours before each confirmed shift.
    EVENTS_REMINDER_HOURS: float = Field(default=24, gt=0)
    # A member with this many no-shows in an org cannot sign up there any more (0: off).
    EVENTS_NO_SHOW_LIMIT: int = Field(default=0, ge=0)

    # Worker
    RUN_WORKER_IN_PROCESS: bool = True
    WORKER_POLL_INTERVAL_SECONDS: float = 5.0
    WORKER_LEASE_SECONDS: int = 60
    WORKER_BATCH_SIZE: int = 50

    # Live events
    # The WebSocket's ping, and its re-check of the session and memberships, every so often.
    WS_HEARTBEAT_SECONDS: float = Field(default=25.0, gt=0)

    # Email
    EMAIL_BACKEND: Literal["console", "file", "smtp", "ses"] = "console"
    EMAIL_FROM: str = "Townsquare <no-reply@localhost>"
    EMAIL_FILE_DIR: Path = Path("./var/mail")
    EMAIL_MAX_ATTEMPTS: int = 8
    EMAIL_RETRY_BASE_SECONDS: float = 30.0
    EMAIL_RETRY_MAX_SECONDS: float = 3600.0
    EMAIL_SEND_CONCURRENCY: int = 4
    SMTP_HOST: str = "localhost"
    SMTP_PORT: int = 25
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_TLS: Literal["none", "starttls", "implicit"] = "none"
    SMTP_TIMEOUT: float = 10.0
    SES_REGION: str = "us-east-1"
    SES_ACCESS_KEY_ID: str | None = None
    SES_SECRET_ACCESS_KEY: str | None = None
    SES_ENDPOINT_URL: str | None = None
    SES_CONFIGURATION_SET: str | None = None
    SES_TIMEOUT: float = 10.0
    EMAIL_RETENTION_DAYS: int = 30

    @field_validator("ALLOWED_ORIGINS", "DEFAULT_MODULES", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return Environment.production == self.ENV

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    @property
    def cookie_secure(self) -> bool:
        if self.SESSION_COOKIE_SECURE is not None:
            return self.SESSION_COOKIE_SECURE
        return Environment.development != self.ENV and Environment.test != self.ENV

    @property
    def json_logs(self) -> bool:
        if self.LOG_FORMAT == "auto":
            return self.is_production
        return self.LOG_FORMAT == "json"

    def production_problems(self) -> list[str]:
        """Settings that make a production instance unsafe, each naming what to fix."""
        problems: list[str] = []
        if self.SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(self.SECRET_KEY) < 32:
            problems.append(
                "TOWNSQUARE_SECRET_KEY is the development default or shorter than 32 characters; "
                "set a long random value"
            )
        if self.SESSION_COOKIE_SECURE is False:
            problems.append(
                "TOWNSQUARE_SESSION_COOKIE_SECURE is false; session cookies must be Secure"
            )
        return problems


@lru_cache
def get_settings() -> Settings:
    return Settings()


async def _settings_from_request(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(_settings_from_request)]
