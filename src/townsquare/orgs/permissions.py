"""The one table that says what each role may do. No endpoint checks a role by name."""

from __future__ import annotations

from townsquare.orgs.enums import MemberRole, Permission

_EVERYONE = {Permission.org_read, Permission.members_read}
_CONTENT = {Permission.cms_write, Permission.media_manage, Permission.events_manage}
_ADMINISTRATION = {
    Permission.org_update,
    Permission.modules_manage,
    Permission.members_manage,
    Permission.audit_read,
}

ROLE_PERMISSIONS: dict[MemberRole, frozenset[Permission]] = {
    MemberRole.owner: frozenset(Permission),
    MemberRole.admin: frozenset(
        _EVERYONE
        | _ADMINISTRATION
        | _CONTENT
        | {Permission.support_inbox, Permission.chat_attachments}
    ),
    MemberRole.editor: frozenset(_EVERYONE | _CONTENT | {Permission.chat_attachments}),
    MemberRole.agent: frozenset(
        _EVERYONE | {Permission.support_inbox, Permission.chat_attachments}
    ),
    MemberRole.member: frozenset(_EVERYONE),
}


def role_has(role: MemberRole, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
