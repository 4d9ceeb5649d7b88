"""Dependencies of the CMS routes: the org guard for editors and the `If-Match` version."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header

from townsquare.errors import field_error
from townsquare.orgs.context import OrgContext
from townsquare.orgs.deps import org_guard
from townsquare.orgs.enums import Module, Permission

CmsEditor = Annotated[OrgContext, org_guard(Permission.cms_write, module=Module.cms)]
"""Every management route, reads included (drafts are unpublished work): owners, admins
and editors of an org whose `cms` module is on."""

_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


async def if_match_version(
    if_match: Annotated[
        str | None,
        Header(
            description='The version the client last saw: `"3"`, `3` or `W/"3"` '
            "(or send `version` in the body)."
        ),
    ] = None,
) -> int | None:
    """The version in `If-Match`; None when absent, 422 when it is not a version."""
    if if_match is None:
        return None
    match = _IF_MATCH.match(if_match)
    if match is None:
        raise field_error("If-Match", 'Send the version as "3", 3 or W/"3".', "invalid_version")
    return int(match.group(1))


IfMatchVersion = Annotated[int | None, Depends(if_match_version)]
