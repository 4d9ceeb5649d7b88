"""Every setting of Townsquare, read from `TOWNSQUARE_*` environment variables or `.env`."""

from __future__ import annotations

import string
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, Request
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from townsquare.config_checks import (
    CookieDomain,
    CookieName,
    DatabaseUrl,
    EmailFrom,
    LogLevel,
    ModuleNames,
    Networks,
    OptionalHttpUrl,
    Origins,
    PublicUrl,
    RateLimit,
    RedisUrl,
    TimezoneName,
    url_template,
)

DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-key-change-me"


class Environment(StrEnum):
    development = "development"
    production = "production"
    test = "test"


TokenLink = Annotated[str, url_template({"token"}, {"public_url"})]
ConversationLink = Annotated[str, url_template({"conversation_id"}, {"public_url", "org_slug"})]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TOWNSQUARE_", env_file=".env", extra="ignore", case_sensitive=False
    )

    ENV: Environment = Environment.development
    DATABASE_URL: DatabaseUrl = "sqlite+aiosqlite:///./var/townsquare.db"
    DATABASE_POOL_SIZE: int = Field(default=10, ge=1)
    DATABASE_MAX_OVERFLOW: int = Field(default=10, ge=0)
    SQLITE_BUSY_TIMEOUT_MS: int = Field(default=5000, ge=0)
    SECRET_KEY: str = Field(default=DEVELOPMENT_SECRET_KEY, min_length=1)
    PUBLIC_URL: PublicUrl = "http://127.0.0.1:8000"
    ALLOWED_ORIGINS: Origins = Field(default_factory=list)
    LOG_FORMAT: Literal["auto", "json", "text"] = "auto"
    LOG_LEVEL: LogLevel = "INFO"
    REDIS_URL: RedisUrl = None
    # Proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto are
    # believed; empty: trust nobody, the client is the connection's peer (proxies.py).
    TRUSTED_PROXIES: Networks = Field(default_factory=list)
    # Every request body but the uploads' (bounded by their own settings below).
    MAX_JSON_BODY_BYTES: int = Field(default=1024 * 1024, ge=1)

    # Identity
    DEFAULT_TIMEZONE: TimezoneName = "UTC"
    SESSION_COOKIE_NAME: CookieName = "townsquare_session"
    SESSION_COOKIE_DOMAIN: CookieDomain = None
    SESSION_COOKIE_SECURE: bool | None = None
    SESSION_IDLE_TIMEOUT_SECONDS: int = Field(default=7 * 24 * 3600, ge=1)
    SESSION_ABSOLUTE_TIMEOUT_SECONDS: int = Field(default=30 * 24 * 3600, ge=1)
    CSRF_COOKIE_NAME: CookieName = "csrftoken"
    EMAIL_VERIFICATION_TTL_SECONDS: int = Field(default=48 * 3600, ge=1)
    PASSWORD_RESET_TTL_SECONDS: int = Field(default=3600, ge=1)
    # Links in identity emails; {public_url} and {token} are filled in. Point them at the
    # client app's pages that POST the token to /api/v1/auth/verify-email or reset-password.
    VERIFY_EMAIL_URL: TokenLink = "{public_url}/verify-email?token={token}"
    PASSWORD_RESET_URL: TokenLink = "{public_url}/reset-password?token={token}"
    ARGON2_TIME_COST: int = Field(default=2, ge=1)
    ARGON2_MEMORY_COST_KIB: int = Field(default=19 * 1024, ge=8)
    ARGON2_PARALLELISM: int = Field(default=1, ge=1)
    RATE_LIMIT_ENABLED: bool = True
    RATE_LIMIT_LOGIN: RateLimit = "10/minute"
    RATE_LIMIT_LOGIN_ACCOUNT: RateLimit = "5/minute"
    RATE_LIMIT_REGISTER: RateLimit = "10/hour"
    RATE_LIMIT_CHANGE_PASSWORD: RateLimit = "5/minute"
    RATE_LIMIT_PASSWORD_RESET: RateLimit = "5/hour"
    RATE_LIMIT_PASSWORD_RESET_ACCOUNT: RateLimit = "3/hour"
    RATE_LIMIT_VERIFY: RateLimit = "10/minute"

    # Organizations
    DEFAULT_MODULES: ModuleNames = Field(default_factory=lambda: ["cms", "events", "support"])
    INVITATION_TTL_SECONDS: int = Field(default=7 * 24 * 3600, ge=1)
    # Link in invitation emails; the client app's page previews with GET and accepts with
    # POST /api/v1/invitations/{token}[/accept].
    INVITATION_URL: TokenLink = "{public_url}/invitations/{token}"

    # CMS
    ARTICLE_REVISIONS_KEPT: int = Field(default=50, ge=1)
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
    S3_REGION: str = Field(default="us-east-1", min_length=1)
    S3_ENDPOINT_URL: OptionalHttpUrl = None
    S3_PUBLIC_ENDPOINT_URL: OptionalHttpUrl = None
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
    SUPPORT_CONVERSATION_URL: ConversationLink = (
        "{public_url}/o/{org_slug}/support/{conversation_id}"
    )

    # Events and shifts
    # A volunteer may cancel their own signup until this many hours before the shift starts.
    EVENTS_CANCEL_DEADLINE_HOURS: float = Field(default=3, ge=0)
    # The reminder email goes out this many hours before each confirmed shift.
    EVENTS_REMINDER_HOURS: float = Field(default=24, gt=0)
    # A member with this many no-shows in an org cannot sign up there any more (0: off).
    EVENTS_NO_SHOW_LIMIT: int = Field(default=0, ge=0)

    # Worker
    RUN_WORKER_IN_PROCESS: bool = True
    WORKER_POLL_INTERVAL_SECONDS: float = Field(default=5.0, gt=0)
    WORKER_LEASE_SECONDS: int = Field(default=60, ge=1)
    WORKER_BATCH_SIZE: int = Field(default=50, ge=1)

    # Live events
    # The WebSocket's ping, and its re-check of the session and memberships, every so often.
    WS_HEARTBEAT_SECONDS: float = Field(default=25.0, gt=0)

    # Email
    EMAIL_BACKEND: Literal["console", "file", "smtp", "ses"] = "console"
    EMAIL_FROM: EmailFrom = "Townsquare <no-reply@localhost>"
    EMAIL_FILE_DIR: Path = Path("./var/mail")
    EMAIL_MAX_ATTEMPTS: int = Field(default=8, ge=1)
    EMAIL_RETRY_BASE_SECONDS: float = Field(default=30.0, gt=0)
    EMAIL_RETRY_MAX_SECONDS: float = Field(default=3600.0, gt=0)
    EMAIL_SEND_CONCURRENCY: int = Field(default=4, ge=1)
    SMTP_HOST: str = Field(default="localhost", min_length=1)
    SMTP_PORT: int = Field(default=25, ge=1, le=65535)
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_TLS: Literal["none", "starttls", "implicit"] = "none"
    SMTP_TIMEOUT: float = Field(default=10.0, gt=0)
    SES_REGION: str = Field(default="us-east-1", min_length=1)
    SES_ACCESS_KEY_ID: str | None = None
    SES_SECRET_ACCESS_KEY: str | None = None
    SES_ENDPOINT_URL: OptionalHttpUrl = None
    SES_CONFIGURATION_SET: str | None = None
    SES_TIMEOUT: float = Field(default=10.0, gt=0)
    EMAIL_RETENTION_DAYS: int = Field(default=30, ge=1)

    @model_validator(mode="after")
    def _settings_agree(self) -> Settings:
        """Settings that are each valid but wrong together."""
        problems: list[str] = []
        if self.STORAGE == "s3" and not self.S3_BUCKET:
            problems.append("TOWNSQUARE_S3_BUCKET: is required when TOWNSQUARE_STORAGE is s3")
        for first, second in (
            ("S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"),
            ("SES_ACCESS_KEY_ID", "SES_SECRET_ACCESS_KEY"),
            ("SMTP_USERNAME", "SMTP_PASSWORD"),
        ):
            if (getattr(self, first) is None) != (getattr(self, second) is None):
                problems.append(f"TOWNSQUARE_{first}, TOWNSQUARE_{second}: set both or neither")
        if self.EMAIL_RETRY_MAX_SECONDS < self.EMAIL_RETRY_BASE_SECONDS:
            problems.append(
                "TOWNSQUARE_EMAIL_RETRY_MAX_SECONDS: is shorter than "
                "TOWNSQUARE_EMAIL_RETRY_BASE_SECONDS"
            )
        if self.SESSION_COOKIE_NAME == self.CSRF_COOKIE_NAME:
            problems.append(
                "TOWNSQUARE_CSRF_COOKIE_NAME: must differ from TOWNSQUARE_SESSION_COOKIE_NAME"
            )
        if self.ARGON2_MEMORY_COST_KIB < 8 * self.ARGON2_PARALLELISM:
            problems.append(
                "TOWNSQUARE_ARGON2_MEMORY_COST_KIB: must be at least 8 times "
                "TOWNSQUARE_ARGON2_PARALLELISM"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def is_production(self) -> bool:
        return Environment.production == self.ENV

    @property
    def dev_mailbox(self) -> bool:
        """The console's `/dev/mail` exists, and sent emails keep their bodies for it."""
        return Environment.development == self.ENV and self.EMAIL_BACKEND in ("console", "file")

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
