"""Refusals of the signed-in person's account endpoints."""

from __future__ import annotations

from townsquare.errors import Conflict, Forbidden


class LastOwnerOfOrganizations(Conflict):
    """Carries `organizations: [{id, slug, name}]` in the problem body."""

    code = "last_owner"
    title = "Last owner"
    detail = "You are the last owner of an organization; transfer ownership or delete it first."


class InvitationsNeedVerifiedEmail(Forbidden):
    code = "email_not_verified"
    title = "Email not verified"
    detail = "Verify your email address to see the invitations sent to it."
