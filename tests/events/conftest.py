"""Fixtures of the events tests: a team of every role (tests/orgs) and an SMTP server."""

from __future__ import annotations

from tests.email.servers import smtp_server
from tests.orgs.conftest import team

__all__ = ["smtp_server", "team"]
