"""Roles, modules and permissions of organizations."""

from __future__ import annotations

from enum import StrEnum


class MemberRole(StrEnum):
    owner = "owner"
    admin = "admin"
    editor = "editor"
    agent = "agent"
    member = "member"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]


_ROLE_RANK = {
    MemberRole.owner: 50,
    MemberRole.admin: 40,
    MemberRole.editor: 30,
    MemberRole.agent: 20,
    MemberRole.member: 10,
}


class Module(StrEnum):
    cms = "cms"
    events = "events"
    support = "support"


class Permission(StrEnum):
    org_read = "org:read"
    members_read = "members:read"
    org_update = "org:update"
    modules_manage = "modules:manage"
    org_delete = "org:delete"
    ownership_transfer = "ownership:transfer"
    members_manage = "members:manage"
    audit_read = "audit:read"
    cms_write = "cms:write"
    media_manage = "media:manage"
    events_manage = "events:manage"
    support_inbox = "support:inbox"
    chat_attachments = "chat:attachments"


class InvitationStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    expired = "expired"
    revoked = "revoked"
