"""The types of settings that need more than their Python type to be right, and the one
line per invalid setting that the commands print before refusing to start."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from email.utils import parseaddr
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, ValidationError
from pydantic_settings import NoDecode

_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$")
_COOKIE_DOMAIN = re.compile(r"^\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*$")
_DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def split_comma_list(value: object) -> object:
    """`a, b,c` from the environment as `["a", "b", "c"]`."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _rate_limit(value: str) -> str:
    from limits import parse

    try:
        parse(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a rate limit such as '10/minute' or '100 per hour'"
        ) from None
    return value


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"{value!r} is not a log level ({', '.join(_LOG_LEVELS)})")
    return level


def _timezone(value: str) -> str:
    from townsquare.kit.fields import is_timezone

    if not is_timezone(value):
        raise ValueError(f"{value!r} is not an IANA time zone name such as 'Europe/Paris'")
    return value


def _modules(value: list[str]) -> list[str]:
    from townsquare.orgs.enums import Module

    known = [module.value for module in Module]
    unknown = [name for name in value if name not in known]
    if unknown:
        raise ValueError(
            f"unknown module {', '.join(map(repr, unknown))} (known: {', '.join(known)})"
        )
    return list(dict.fromkeys(value))


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError(f"{value!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http:// or https:// URL with a host")
    if any(c.isspace() for c in value):
        raise ValueError(f"{value!r} contains whitespace")
    return value


def _public_url(value: str) -> str:
    _http_url(value)
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r} must not have a query or fragment")
    return value


def _origin(value: str) -> str:
    _http_url(value)
    parts = urlsplit(value)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{value!r} is not an origin (scheme://host[:port], no path)")
    return value.rstrip("/")


def _origins(value: list[str]) -> list[str]:
    return [_origin(item) for item in value]


def url_template(required: Iterable[str], optional: Iterable[str] = ()) -> AfterValidator:
    """A link template filled with `str.format`: it must name every `required`
    placeholder, nothing else but `optional` ones, and make an http(s) URL."""
    required, optional = frozenset(required), frozenset(optional)

    def check(value: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a template: {exc}") from None
        unknown, missing = names - required - optional, required - names
        if unknown or missing:
            wanted = ", ".join(f"{{{name}}}" for name in sorted(required))
            raise ValueError(
                f"{value!r} must use {wanted}"
                + (f" (and may use {', '.join(f'{{{n}}}' for n in sorted(optional))})")
                + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
            )
        sample = value.format(
            **{name: "https://example.org" if name == "public_url" else "x" for name in names}
        )
        _http_url(sample)
        return value

    return AfterValidator(check)


def _database_url(value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError("is not a database URL") from None
    if url.drivername not in _DATABASE_DRIVERS:
        raise ValueError(
            f"uses the driver {url.drivername!r}; use sqlite+aiosqlite:///path/to.db or "
            "postgresql+asyncpg://user:password@host/database"
        )
    if not url.database:
        raise ValueError("names no database")
    return value


def _redis_url(value: str | None) -> str | None:
    if value is None:
        return None
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in _REDIS_SCHEMES:
        raise ValueError("is not a redis://, rediss:// or unix:// URL")
    return value


def _cookie_name(value: str) -> str:
    if not _COOKIE_NAME.match(value):
        raise ValueError(f"{value!r} is not a cookie name (letters, digits, !#$%&'*+-.^_`|~)")
    return value


def _cookie_domain(value: str | None) -> str | None:
    if value is not None and not _COOKIE_DOMAIN.match(value):
        raise ValueError(f"{value!r} is not a domain name")
    return value


def _email_from(value: str) -> str:
    _, address = parseaddr(value)
    local, _, domain = address.rpartition("@")
    if not local or not domain or any(c.isspace() for c in address):
        raise ValueError(f"{value!r} is not an address such as 'Townsquare <no-reply@example.org>'")
    return value


def _networks(value: list[str]) -> list[str]:
    from townsquare.proxies import parse_network

    for entry in value:
        try:
            parse_network(entry)
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network such as '10.0.0.0/8'"
            ) from None
    return value


def _optional(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    return lambda value: None if value is None else check(value)


CommaList = BeforeValidator(split_comma_list)
RateLimit = Annotated[str, AfterValidator(_rate_limit)]
LogLevel = Annotated[str, AfterValidator(_log_level)]
TimezoneName = Annotated[str, AfterValidator(_timezone)]
ModuleNames = Annotated[list[str], NoDecode, CommaList, AfterValidator(_modules)]
PublicUrl = Annotated[str, AfterValidator(_public_url)]
Origins = Annotated[list[str], NoDecode, CommaList, AfterValidator(_origins)]
OptionalHttpUrl = Annotated[str | None, AfterValidator(_optional(_http_url))]
DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
RedisUrl = Annotated[str | None, AfterValidator(_redis_url)]
CookieName = Annotated[str, AfterValidator(_cookie_name)]
CookieDomain = Annotated[str | None, AfterValidator(_cookie_domain)]
EmailFrom = Annotated[str, AfterValidator(_email_from)]
Networks = Annotated[list[str], NoDecode, CommaList, AfterValidator(_networks)]


def setting_errors(error: ValidationError, prefix: str = "TOWNSQUARE_") -> list[str]:
    """One line per invalid setting: its environment variable and what is wrong."""
    lines: list[str] = []
    for item in error.errors(include_url=False, include_input=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        location = [str(part) for part in item["loc"] if not isinstance(part, int)]
        if location:
            lines.append(f"{prefix}{location[0]}: {message}")
        else:  # the model's own check: each line already names its settings
            lines.extend(message.splitlines())
    return lines
