"""The authorization matrix: what every org-scoped route (`/api/v1/orgs/{org}/...`) requires.

`tests/orgs/test_authorization_matrix.py` lists the app's routes whose path contains `{org}`
(anonymous `/public/` routes aside) and fails when one of them has no entry here. For each
entry it sends a real request as anonymous (401), as a member of another organization only
(404 `organization_not_found`), and as each role of the organization: a role without the
permission (by API.md's matrix, `permission_table.py`, not by the app's own table) gets 403
`permission_denied`; a role with it gets neither 401, 403, 404 `organization_not_found`,
422 nor a 5xx. With `module=...` it also checks 403
`module_disabled` once that module is switched off.

Extending it is one line per route, keyed by method and path template, in the domain's own
`tests/<domain>/matrix.py` (collected by `all_routes()`; a route may be listed only once):

    from tests.orgs.matrix import needs, signed_in
    from townsquare.orgs.enums import Module, Permission

    ROUTES = {
        ("POST", "/api/v1/orgs/{org}/articles"): needs(
            Permission.cms_write, module=Module.cms, body={"title": "Hello"}
        ),
        ("POST", "/api/v1/orgs/{org}/conversations"): signed_in(
            module=Module.support, body={"subject": "Hi", "body": "Help"}
        ),
    }

Path parameters other than `{org}` get a random UUID unless `path={"name": "value"}` says
otherwise; `body` is the JSON body (keep it valid: a 422 for an allowed role fails), `params`
the query string.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from townsquare.orgs.enums import Module, Permission

RouteKey = tuple[str, str]


@dataclass(frozen=True)
class Rule:
    """What a route requires. `permission=None`: any signed-in user, member or not."""

    permission: Permission | None
    module: Module | None = None
    body: Any = None
    params: dict[str, str] = field(default_factory=dict)
    path: dict[str, str] = field(default_factory=dict)
    files: dict[str, Any] | None = None
    """A multipart body (`httpx` `files=`), for upload routes."""


def needs(
    permission: Permission,
    *,
    module: Module | None = None,
    body: Any = None,
    params: dict[str, str] | None = None,
    path: dict[str, str] | None = None,
    files: dict[str, Any] | None = None,
) -> Rule:
    """Members whose role has `permission` may call it; other members get 403, outsiders 404."""
    return Rule(permission, module, body, params or {}, path or {}, files)


def signed_in(
    *,
    module: Module | None = None,
    body: Any = None,
    params: dict[str, str] | None = None,
    path: dict[str, str] | None = None,
) -> Rule:
    """Any signed-in user may call it, members of the organization or not (support customers)."""
    return Rule(None, module, body, params or {}, path or {})


P = Permission
ORGS = "/api/v1/orgs/{org}"

ROUTES: dict[RouteKey, Rule] = {
    ("GET", ORGS): needs(P.org_read),
    ("PATCH", ORGS): needs(P.org_update, body={"name": "Acme Renamed"}),
    ("DELETE", ORGS): needs(P.org_delete),
    ("GET", f"{ORGS}/members"): needs(P.members_read),
    ("PATCH", f"{ORGS}/members/{{member_id}}"): needs(P.members_manage, body={"role": "member"}),
    ("DELETE", f"{ORGS}/members/{{member_id}}"): needs(P.members_manage),
    ("POST", f"{ORGS}/leave"): needs(P.org_read),
    ("POST", f"{ORGS}/transfer-ownership"): needs(
        P.ownership_transfer, body={"member_id": "00000000-0000-4000-8000-000000000000"}
    ),
    ("POST", f"{ORGS}/invitations"): needs(
        P.members_manage, body={"email": "invitee@example.com", "role": "member"}
    ),
    ("GET", f"{ORGS}/invitations"): needs(P.members_manage, params={"status": "pending"}),
    ("POST", f"{ORGS}/invitations/{{invitation_id}}/resend"): needs(P.members_manage),
    ("DELETE", f"{ORGS}/invitations/{{invitation_id}}"): needs(P.members_manage),
    ("GET", f"{ORGS}/modules"): needs(P.modules_manage),
    ("PUT", f"{ORGS}/modules"): needs(
        P.modules_manage, body={"modules": ["cms", "events", "support"]}
    ),
    ("GET", f"{ORGS}/audit-log"): needs(P.audit_read),
}


def all_routes() -> dict[RouteKey, Rule]:
    """This table merged with `ROUTES` of every `tests/<domain>/matrix.py`."""
    merged = dict(ROUTES)
    tests_dir = Path(__file__).resolve().parent.parent
    for info in pkgutil.iter_modules([str(tests_dir)]):
        if (
            not info.ispkg
            or info.name == "orgs"
            or not (tests_dir / info.name / "matrix.py").exists()
        ):
            continue
        module = importlib.import_module(f"tests.{info.name}.matrix")
        for key, rule in getattr(module, "ROUTES", {}).items():
            if key in merged:
                raise AssertionError(f"{key} is listed twice in the authorization matrix")
            merged[key] = rule
    return merged
