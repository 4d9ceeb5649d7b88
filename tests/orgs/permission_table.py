"""The permission matrix of ../shared/API.md ("Organizations", "Permission matrix"), written
out by hand: the tests compare the app's `ROLE_PERMISSIONS` and every org route against it,
so it must never be computed from the app."""

from __future__ import annotations

from townsquare.orgs.enums import MemberRole, Permission

# One entry per role; the comments name the API.md row each pair of permissions comes from.
PERMISSION_TABLE: dict[str, frozenset[str]] = {
    "owner": frozenset(
        {
            "org:read",  # read org, list members
            "members:read",
            "org:update",  # update org, modules
            "modules:manage",
            "org:delete",  # delete org, transfer ownership
            "ownership:transfer",
            "members:manage",  # invite / remove / change roles
            "audit:read",  # the audit log (no row in API.md: owner and admin, as org admin)
            "cms:write",  # CMS write and publish, media, events and shifts management
            "media:manage",
            "events:manage",
            "support:inbox",  # support inbox
            "chat:attachments",  # upload chat attachments
        }
    ),
    "admin": frozenset(
        {
            "org:read",
            "members:read",
            "org:update",
            "modules:manage",
            "members:manage",
            "audit:read",
            "cms:write",
            "media:manage",
            "events:manage",
            "support:inbox",
            "chat:attachments",
        }
    ),
    "editor": frozenset(
        {
            "org:read",
            "members:read",
            "cms:write",
            "media:manage",
            "events:manage",
            "chat:attachments",
        }
    ),
    "agent": frozenset(
        {
            "org:read",
            "members:read",
            "support:inbox",
            "chat:attachments",
        }
    ),
    "member": frozenset(
        {
            "org:read",
            "members:read",
        }
    ),
}


def allowed(role: MemberRole, permission: Permission) -> bool:
    """What API.md says: may `role` do what `permission` guards?"""
    return permission.value in PERMISSION_TABLE[role.value]
