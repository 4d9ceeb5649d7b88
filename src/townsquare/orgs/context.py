"""`OrgContext`: who acts in which organization, as the org guard resolved it."""

from __future__ import annotations

from dataclasses import dataclass

from townsquare.auth.models import User
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Membership, Organization


@dataclass(frozen=True)
class OrgContext:
    """The organization named in the path, the caller, and the caller's membership.

    Every org-scoped service function takes it right after the session and filters its
    queries by `ctx.org.id`, so an id of another organization is simply not found."""

    org: Organization
    user: User
    membership: Membership

    @property
    def role(self) -> MemberRole:
        return self.membership.role
