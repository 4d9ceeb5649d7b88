"""Refusals of the identity domain."""

from __future__ import annotations

from townsquare.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized


class EmailTaken(Conflict):
    code = "email_taken"
    title = "Email taken"
    detail = "An account with this email address already exists."


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    title = "Invalid credentials"
    detail = "The email address or the password is wrong."


class WrongCurrentPassword(BadRequest):
    code = "invalid_current_password"
    title = "Wrong current password"
    detail = "The current password is wrong."


class InvalidToken(BadRequest):
    code = "invalid_token"
    title = "Invalid token"
    detail = "The link is invalid, used or expired; ask for a new one."


class AlreadyVerified(Conflict):
    code = "already_verified"
    title = "Already verified"
    detail = "This email address is already verified."


class UserNotFound(NotFound):
    code = "user_not_found"
    detail = "No such user."


class SessionNotFound(NotFound):
    code = "session_not_found"
    detail = "No such session."


class CannotChangeOwnAccount(Conflict):
    code = "cannot_change_own_account"
    title = "Cannot change your own account"
    detail = "Staff cannot demote or deactivate themselves; ask another staff member."


class EmailNotVerified(Forbidden):
    code = "email_not_verified"
    title = "Email not verified"
    detail = (
        "Verify your email address first: an unverified account cannot create organizations, "
        "invite, publish, open support conversations or sign up for shifts."
    )
