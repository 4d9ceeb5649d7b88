"""Canned responses: an organization's ready answers, found by a short code."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.db import contains_pattern, flush_or_conflict
from townsquare.kit.pagination import PageParams, paginate
from townsquare.orgs.context import OrgContext
from townsquare.support.errors import CannedResponseNotFound, ShortCodeTaken
from townsquare.support.models import CannedResponse

SHORT_CODE_CONSTRAINT = "uq_canned_responses_organization_id_short_code"


async def list_canned(
    session: AsyncSession, ctx: OrgContext, params: PageParams, *, q: str | None = None
) -> tuple[list[CannedResponse], int]:
    """The organization's canned responses by short code; `q` matches code or text."""
    statement = (
        select(CannedResponse)
        .where(CannedResponse.organization_id == ctx.org.id)
        .order_by(CannedResponse.short_code, CannedResponse.id)
    )
    if q:
        pattern = contains_pattern(q)
        statement = statement.where(
            func.lower(CannedResponse.short_code).like(pattern, escape="\\")
            | func.lower(CannedResponse.text).like(pattern, escape="\\")
        )
    return await paginate(session, statement, params)


async def get_canned(
    session: AsyncSession, ctx: OrgContext, canned_id: uuid.UUID
) -> CannedResponse:
    """One of the organization's canned responses, or 404 `canned_response_not_found`."""
    found = await session.scalar(
        select(CannedResponse).where(
            CannedResponse.id == canned_id, CannedResponse.organization_id == ctx.org.id
        )
    )
    if found is None:
        raise CannedResponseNotFound()
    return found


async def create_canned(
    session: AsyncSession, ctx: OrgContext, *, short_code: str, text: str
) -> CannedResponse:
    """A new canned response; a short code in use answers 409 `short_code_taken`."""
    canned = CannedResponse(organization_id=ctx.org.id, short_code=short_code, text=text)
    await flush_or_conflict(session, {SHORT_CODE_CONSTRAINT: ShortCodeTaken}, add=[canned])
    return canned


async def update_canned(
    session: AsyncSession, ctx: OrgContext, canned_id: uuid.UUID, changes: dict[str, Any]
) -> CannedResponse:
    """Change the short code or the text (409 `short_code_taken` for a code in use)."""
    canned = await get_canned(session, ctx, canned_id)

    def apply() -> None:
        for name in ("short_code", "text"):
            if name in changes:
                setattr(canned, name, changes[name])

    await flush_or_conflict(session, {SHORT_CODE_CONSTRAINT: ShortCodeTaken}, apply=apply)
    return canned


async def delete_canned(session: AsyncSession, ctx: OrgContext, canned_id: uuid.UUID) -> None:
    await session.delete(await get_canned(session, ctx, canned_id))
    await session.flush()
