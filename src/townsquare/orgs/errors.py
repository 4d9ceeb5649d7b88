"""Every error of the organizations domain: the guard's, organizations', members',
invitations'. Services raise them; the error handlers answer problem+json by `code`."""

from __future__ import annotations

from townsquare.errors import Conflict, Forbidden, Gone, NotFound

# --- the org guard ----------------------------------------------------------------------


class OrganizationNotFound(NotFound):
    code = "organization_not_found"
    detail = "No such organization."


class PermissionDenied(Forbidden):
    code = "permission_denied"
    detail = "Your role in this organization does not allow this."


class ModuleDisabled(Forbidden):
    code = "module_disabled"
    title = "Module disabled"
    detail = "This module is turned off for the organization."


# --- organizations ----------------------------------------------------------------------


class SlugTaken(Conflict):
    code = "slug_taken"
    title = "Slug taken"
    detail = "Another organization already uses this slug; `suggestion` is a free one."


# --- members ----------------------------------------------------------------------------


class MemberNotFound(NotFound):
    code = "member_not_found"
    detail = "No such member in this organization."


class CannotChangeOwnRole(Forbidden):
    code = "cannot_change_own_role"
    detail = "Nobody changes their own role; ask another admin or owner."


class CannotGrantOwner(Forbidden):
    code = "cannot_grant_owner"
    detail = "Nobody is made owner by a role change or an invitation; transfer ownership instead."


class RoleAboveOwn(Forbidden):
    code = "role_above_own"
    detail = "You cannot grant a role above your own."


class CannotManageHigherRole(Forbidden):
    code = "cannot_manage_higher_role"
    detail = "You cannot change or remove a member whose role is above your own."


class LastOwner(Conflict):
    code = "last_owner"
    title = "Last owner"
    detail = "An organization must keep at least one owner; transfer ownership first."


class TransferTargetNotAdmin(Conflict):
    code = "transfer_target_not_admin"
    detail = "Ownership can only be transferred to another member who is an admin."


# --- invitations ------------------------------------------------------------------------


class InvitationNotFound(NotFound):
    code = "invitation_not_found"
    detail = "No such invitation."


class InvitationExpired(Gone):
    code = "invitation_expired"
    title = "Invitation expired"
    detail = "This invitation has expired; ask for a new one."


class InvitationRevoked(Gone):
    code = "invitation_revoked"
    title = "Invitation revoked"
    detail = "This invitation was revoked."


class InvitationAlreadyAccepted(Conflict):
    code = "invitation_already_accepted"
    detail = "This invitation has already been accepted."


class InvitationEmailMismatch(Forbidden):
    code = "invitation_email_mismatch"
    detail = "This invitation was sent to another email address; sign in with that account."


class AlreadyMember(Conflict):
    code = "already_member"
    detail = "This person is already a member of the organization."


class InvitationExists(Conflict):
    code = "invitation_exists"
    detail = (
        "A pending invitation for this address already exists; resend or revoke it "
        "(`invitation_id`)."
    )
