"""Agents' routes beside the conversations: canned responses and the support stats."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, status

from townsquare.db import DbSession, TransactionalRoute
from townsquare.kit.fields import SearchText
from townsquare.kit.pagination import Page
from townsquare.support import canned, schemas, stats
from townsquare.support.deps import SupportAgent
from townsquare.support.params import AGENT_ERRORS, CannedId, Paging

router = APIRouter(route_class=TransactionalRoute)


@router.get(
    "/canned-responses", response_model=Page[schemas.CannedResponse], responses=AGENT_ERRORS
)
async def list_canned_responses(
    ctx: SupportAgent,
    session: DbSession,
    paging: Paging,
    q: Annotated[SearchText | None, Query(description="Words in the short code or text")] = None,
) -> Page[schemas.CannedResponse]:
    """The organization's canned responses by short code."""
    rows, total = await canned.list_canned(session, ctx, paging, q=q)
    items = [schemas.CannedResponse.model_validate(row) for row in rows]
    return Page[schemas.CannedResponse].of(items, paging, total)


@router.post(
    "/canned-responses",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.CannedResponse,
    responses={**AGENT_ERRORS, 409: {"description": "`short_code_taken`"}},
)
async def create_canned_response(
    ctx: SupportAgent, body: schemas.CannedResponseCreate, session: DbSession
) -> schemas.CannedResponse:
    row = await canned.create_canned(session, ctx, short_code=body.short_code, text=body.text)
    return schemas.CannedResponse.model_validate(row)


@router.get(
    "/canned-responses/{canned_id}",
    response_model=schemas.CannedResponse,
    responses=AGENT_ERRORS,
)
async def get_canned_response(
    ctx: SupportAgent, canned_id: CannedId, session: DbSession
) -> schemas.CannedResponse:
    return schemas.CannedResponse.model_validate(await canned.get_canned(session, ctx, canned_id))


@router.patch(
    "/canned-responses/{canned_id}",
    response_model=schemas.CannedResponse,
    responses={**AGENT_ERRORS, 409: {"description": "`short_code_taken`"}},
)
async def update_canned_response(
    ctx: SupportAgent, canned_id: CannedId, body: schemas.CannedResponseUpdate, session: DbSession
) -> schemas.CannedResponse:
    """Change the short code or the text (neither may be null)."""
    row = await canned.update_canned(session, ctx, canned_id, body.model_dump(exclude_unset=True))
    return schemas.CannedResponse.model_validate(row)


@router.delete(
    "/canned-responses/{canned_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=AGENT_ERRORS,
)
async def delete_canned_response(
    ctx: SupportAgent, canned_id: CannedId, session: DbSession
) -> None:
    await canned.delete_canned(session, ctx, canned_id)


@router.get(
    "/support/stats",
    response_model=schemas.SupportStats,
    responses={**AGENT_ERRORS, 422: {"description": "`invalid_range` or `range_too_long`"}},
)
async def support_stats(
    ctx: SupportAgent,
    session: DbSession,
    from_: Annotated[
        date | None, Query(alias="from", description="First day (default: 29 days before `to`)")
    ] = None,
    to: Annotated[date | None, Query(description="Last day, included (default: today)")] = None,
) -> schemas.SupportStats:
    """Conversations opened and resolved, median first-response and resolution times, and
    ratings, over whole days in the organization's time zone (at most 366)."""
    return await stats.support_stats(session, ctx, from_date=from_, to_date=to)
