"""The org guards of the events routes."""

from __future__ import annotations

from typing import Annotated

from townsquare.orgs.context import OrgContext
from townsquare.orgs.deps import org_guard
from townsquare.orgs.enums import Module, Permission

EventsManager = Annotated[OrgContext, org_guard(Permission.events_manage, module=Module.events)]
"""Owners, admins and editors of an org whose `events` module is on: events, shifts,
rosters, removing signups and marking no-shows."""

EventsMember = Annotated[OrgContext, org_guard(Permission.org_read, module=Module.events)]
"""Any member: reading published events and their shifts, signing up, cancelling one's own
signup."""
