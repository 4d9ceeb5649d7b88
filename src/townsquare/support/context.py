"""`SupportCaller`: who calls a support route that customers and agents share.

A customer need not be a member of the organization, so the org guard's `OrgContext`
(which carries a membership) does not fit; this does, and says whether the caller acts
as one of the organization's agents.
"""

from __future__ import annotations

from dataclasses import dataclass

from townsquare.auth.models import User
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import Permission
from townsquare.orgs.models import Membership, Organization
from townsquare.orgs.permissions import role_has
from townsquare.support.enums import ChatParticipantRole
from townsquare.support.models import Conversation


@dataclass(frozen=True)
class SupportCaller:
    """The organization named in the path, the signed-in caller, and their membership if
    they have one. Agents (a role with `support:inbox`) see the whole inbox; everybody
    else sees only the conversations they opened."""

    org: Organization
    user: User
    membership: Membership | None

    @classmethod
    def of(cls, ctx: OrgContext) -> SupportCaller:
        return cls(org=ctx.org, user=ctx.user, membership=ctx.membership)

    @property
    def is_agent(self) -> bool:
        return self.membership is not None and role_has(
            self.membership.role, Permission.support_inbox
        )

    def agent_context(self) -> OrgContext | None:
        """The caller as the org guard would see them, when they are an agent."""
        if self.membership is None or not self.is_agent:
            return None
        return OrgContext(org=self.org, user=self.user, membership=self.membership)

    def role_in(self, conversation: Conversation) -> ChatParticipantRole:
        """The side the caller speaks for: the customer of their own conversation (an
        agent who opened one included), the organization's agent otherwise."""
        if conversation.customer_id == self.user.id:
            return ChatParticipantRole.customer
        return ChatParticipantRole.agent

    def sees_notes(self, conversation: Conversation) -> bool:
        """Whether internal notes of `conversation` are shown to the caller."""
        return self.is_agent and self.role_in(conversation) == ChatParticipantRole.agent
