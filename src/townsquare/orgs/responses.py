"""OpenAPI descriptions of the organizations routes' problem+json answers."""

from __future__ import annotations

from typing import Any

_DESCRIPTIONS = {
    400: "`bad_request`: the body is not valid JSON",
    401: "`not_authenticated`: no live session",
    403: "`permission_denied` (role), `csrf_failed`, or a rule named in `code`",
    404: "`organization_not_found`: no such organization, or the caller is not a member",
    409: "a conflict named in `code`",
    410: "`invitation_expired` or `invitation_revoked`",
}


def errors(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: the usual meaning of each status in `statuses`, and
    `s409="..."`-style keywords for a status whose codes the route names itself."""
    found: dict[int | str, dict[str, Any]] = {
        status: {"description": _DESCRIPTIONS[status]} for status in statuses
    }
    for key, description in described.items():
        found[int(key.removeprefix("s"))] = {"description": description}
    return found


ORG_ERRORS = errors(401, 403, 404)
"""An org-scoped route with nothing to add: not signed in, not allowed, not a member."""

MEMBER_NOT_FOUND = "`organization_not_found` or `member_not_found`"
INVITATION_NOT_FOUND = "`organization_not_found` or `invitation_not_found`"
SLUG_TAKEN = "`slug_taken`, with a free `suggestion`"
