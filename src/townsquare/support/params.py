"""What the support routers share: path and query parameters, and documented refusals."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Path, Query

from townsquare.kit.pagination import PageParams, page_params
from townsquare.media.deps import get_storage
from townsquare.storage.base import Storage

Paging = Annotated[PageParams, Depends(page_params)]
AppStorage = Annotated[Storage, Depends(get_storage)]
ConversationId = Annotated[uuid.UUID, Path(description="A conversation of this organization.")]
CannedId = Annotated[uuid.UUID, Path(description="A canned response of this organization.")]
Seq = Annotated[int | None, Query(ge=0, le=2**31 - 1)]

_401 = "`not_authenticated`"
_403 = "`module_disabled`, `csrf_failed`, or a rule named in `code`"
_403_AGENT = "`permission_denied` (role without `support:inbox`), `module_disabled`, `csrf_failed`"
_404 = "`organization_not_found`, or `conversation_not_found` (also another customer's)"

Responses = dict[int | str, dict[str, Any]]


def errors(**described: str) -> Responses:
    """The refusals every support route may answer, with `s409="..."` and the like added
    or replacing the defaults."""
    found: Responses = {
        401: {"description": _401},
        403: {"description": _403},
        404: {"description": _404},
    }
    for key, description in described.items():
        found[int(key.removeprefix("s"))] = {"description": description}
    return found


AGENT_ERRORS = errors(s403=_403_AGENT)
