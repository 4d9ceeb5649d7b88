"""The support routes in the authorization matrix (see tests/orgs/matrix.py).

Routes customers and agents share take any signed-in user, member of the organization or
not (`signed_in`, or `Rule(None, ...)` for the multipart attachment upload): with a made-up
conversation id everybody gets 404 `conversation_not_found`, never 401/403/422.
Assignment, statuses, canned responses and stats need `support:inbox` (`needs`). Every
route needs the `support` module.
"""

from __future__ import annotations

from typing import Any

from tests.media import files
from tests.orgs.matrix import RouteKey, Rule, needs, signed_in
from townsquare.orgs.enums import Module, Permission

ORG = "/api/v1/orgs/{org}"
CONVERSATION = f"{ORG}/conversations/{{conversation_id}}"
CANNED = f"{ORG}/canned-responses"


def _anyone(*, body: Any = None, params: dict[str, str] | None = None) -> Rule:
    return signed_in(module=Module.support, body=body, params=params)


def _agents(*, body: Any = None, params: dict[str, str] | None = None) -> Rule:
    return needs(Permission.support_inbox, module=Module.support, body=body, params=params)


ROUTES: dict[RouteKey, Rule] = {
    ("POST", f"{ORG}/conversations"): _anyone(body={"subject": "Hi", "body": "Help"}),
    ("GET", f"{ORG}/conversations"): _anyone(),
    ("GET", CONVERSATION): _anyone(),
    ("GET", f"{CONVERSATION}/messages"): _anyone(params={"after_seq": "0"}),
    ("POST", f"{CONVERSATION}/messages"): _anyone(body={"body": "Hello"}),
    ("POST", f"{CONVERSATION}/attachments"): Rule(
        None, Module.support, files={"file": ("a.png", files.png(8, 8), "image/png")}
    ),
    ("POST", f"{CONVERSATION}/read"): _anyone(body={"seq": 1}),
    ("POST", f"{CONVERSATION}/rating"): _anyone(body={"rating": 5}),
    ("POST", f"{CONVERSATION}/assign"): _agents(body={"assignee_id": None}),
    ("POST", f"{CONVERSATION}/resolve"): _agents(),
    ("POST", f"{CONVERSATION}/close"): _agents(),
    ("POST", f"{CONVERSATION}/reopen"): _agents(),
    ("GET", CANNED): _agents(),
    ("POST", CANNED): _agents(body={"short_code": "hello", "text": "Hi there"}),
    ("GET", f"{CANNED}/{{canned_id}}"): _agents(),
    ("PATCH", f"{CANNED}/{{canned_id}}"): _agents(body={"text": "Hello again"}),
    ("DELETE", f"{CANNED}/{{canned_id}}"): _agents(),
    ("GET", f"{ORG}/support/stats"): _agents(params={"from": "2026-01-01", "to": "2026-01-31"}),
}
