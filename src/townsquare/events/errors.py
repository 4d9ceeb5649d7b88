"""Errors of events and shifts, each with its HTTP status and stable `code`."""

from __future__ import annotations

from townsquare.errors import Conflict, NotFound, UnprocessableEntity


class EventNotFound(NotFound):
    code = "event_not_found"
    detail = "No such event."


class ShiftNotFound(NotFound):
    code = "shift_not_found"
    detail = "No such shift of this event."


class SignupNotFound(NotFound):
    code = "signup_not_found"
    detail = "No such signup on this shift."


class InvalidTimeRange(UnprocessableEntity):
    code = "invalid_time_range"
    title = "Invalid time range"
    detail = "`ends_at` must be after `starts_at`."


class ShiftOutsideEvent(UnprocessableEntity):
    code = "shift_outside_event"
    title = "Shift outside its event"
    detail = "A shift must start and end within its event's time."


class CapacityBelowSignups(Conflict):
    code = "capacity_below_signups"
    title = "Capacity below signups"
    detail = "More volunteers are confirmed than the new capacity; cancel signups first."


class EventCancelled(Conflict):
    code = "event_cancelled"
    title = "Event cancelled"
    detail = "The event is cancelled; nothing of it changes any more."


class ShiftCancelled(Conflict):
    code = "shift_cancelled"
    title = "Shift cancelled"
    detail = "The shift is cancelled; nothing of it changes any more."


class InvalidStatusTransition(Conflict):
    code = "invalid_status_transition"
    title = "Invalid status transition"


# --- signing up -------------------------------------------------------------------------


class ShiftFull(Conflict):
    code = "shift_full"
    title = "Shift full"
    detail = 'Every place of this shift is taken; send `"waitlist": true` to join its waiting list.'


class OverlapsOwnShift(Conflict):
    code = "overlaps_own_shift"
    title = "Overlaps one of your shifts"
    detail = "You are already signed up for a shift at that time."


class AlreadySignedUp(Conflict):
    code = "already_signed_up"
    title = "Already signed up"
    detail = "You are already signed up for this shift (or on its waiting list)."


class SignupClosed(Conflict):
    code = "signup_closed"
    title = "Signup closed"
    detail = "This shift takes no signups: its event is not published, or it was cancelled."


class ShiftStarted(Conflict):
    code = "shift_started"
    title = "Shift started"
    detail = "The shift has started; it takes no more signups."


class SignupBlocked(Conflict):
    code = "signup_blocked"
    title = "Signup blocked"
    detail = "You missed too many shifts of this organization to sign up again."


class CancelDeadlinePassed(Conflict):
    code = "cancel_deadline_passed"
    title = "Cancel deadline passed"
    detail = "It is too close to the start to cancel; ask the organizers."


class SignupNotActive(Conflict):
    code = "signup_not_active"
    title = "Signup not active"
    detail = "This signup is already cancelled or marked as a no-show."


class ShiftNotStarted(Conflict):
    code = "shift_not_started"
    title = "Shift not started"
    detail = "A no-show can only be marked once the shift has started."
