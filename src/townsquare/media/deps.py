"""Named guards of the media routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request

from townsquare.orgs.context import OrgContext
from townsquare.orgs.deps import org_guard
from townsquare.orgs.enums import Permission
from townsquare.storage.base import Storage

MediaManager = Annotated[OrgContext, org_guard(Permission.media_manage)]
"""Owners, admins and editors: the media library is shared by CMS and events."""


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage
