"""Telling a database outage (503, try again) from an error in the request (500)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from townsquare.read_pool import DatabaseUnavailable

# SQLSTATE classes that mean "the database cannot serve now", not "the request is wrong":
# connection exceptions, insufficient resources (too many clients), operator intervention.
_OUTAGE_SQLSTATE_PREFIXES = ("08", "53", "57P")

RETRY_AFTER_SECONDS = 5


def is_database_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database is unreachable, saturated or shutting down."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        for source in (exc.orig, getattr(exc.orig, "__cause__", None)):
            sqlstate = str(
                getattr(source, "sqlstate", None) or getattr(source, "pgcode", None) or ""
            )
            if sqlstate.startswith(_OUTAGE_SQLSTATE_PREFIXES):
                return True
        return False
    # asyncpg raises a refused or dropped connection as it is, unwrapped.
    return isinstance(exc, (ConnectionError, OSError)) and not isinstance(exc, FileNotFoundError)


def database_unavailable() -> DatabaseUnavailable:
    """The 503 `database_unavailable` every route answers while the database is out."""
    return DatabaseUnavailable(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
