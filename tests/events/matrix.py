"""The events routes in the authorization matrix (see tests/orgs/matrix.py).

Managing events, shifts and rosters needs `events:manage`; reading published events and
their shifts, signing up and cancelling one's own signup take any member (`org:read`).
Every route needs the `events` module. Made-up ids answer 404 `event_not_found` to whoever
may call the route.
"""

from __future__ import annotations

from typing import Any

from tests.orgs.matrix import RouteKey, Rule, needs
from townsquare.orgs.enums import Module, Permission

EVENTS = "/api/v1/orgs/{org}/events"
EVENT = f"{EVENTS}/{{event_id}}"
SHIFTS = f"{EVENT}/shifts"
SHIFT = f"{SHIFTS}/{{shift_id}}"
SIGNUPS = f"{SHIFT}/signups"
SIGNUP = f"{SIGNUPS}/{{signup_id}}"

TIMES = {"starts_at": "2030-06-01T08:00:00Z", "ends_at": "2030-06-01T12:00:00Z"}
SHIFT_BODY = {"title": "Bar", "capacity": 3, **TIMES}


def _managers(*, body: Any = None) -> Rule:
    return needs(Permission.events_manage, module=Module.events, body=body)


def _members(*, body: Any = None) -> Rule:
    return needs(Permission.org_read, module=Module.events, body=body)


ROUTES: dict[RouteKey, Rule] = {
    ("POST", EVENTS): _managers(body={"title": "Fair", **TIMES}),
    ("GET", EVENTS): _members(),
    ("GET", EVENT): _members(),
    ("PATCH", EVENT): _managers(body={"title": "Fair"}),
    ("DELETE", EVENT): _managers(),
    ("POST", SHIFTS): _managers(body=SHIFT_BODY),
    ("POST", f"{SHIFTS}/batch"): _managers(body={"shifts": [SHIFT_BODY]}),
    ("GET", SHIFTS): _members(),
    ("GET", SHIFT): _members(),
    ("PATCH", SHIFT): _managers(body={"capacity": 4}),
    ("DELETE", SHIFT): _managers(),
    ("POST", SIGNUPS): _members(body={"waitlist": True}),
    ("GET", SIGNUPS): _managers(),
    ("DELETE", SIGNUP): _members(),
    ("POST", f"{SIGNUP}/no-show"): _managers(),
    ("GET", f"{EVENT}/roster.csv"): _managers(),
}
