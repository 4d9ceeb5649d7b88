"""The support chat (`/api/v1/orgs/{org}/...`): conversations, messages, read cursors,
assignment and statuses, ratings, canned responses and stats.

Routes that customers and agents share take any signed-in user (`SupportUser`; member of
the organization or not) and show each only what their side may see: a customer sees
only the conversations they opened, never an internal note. Assignment, statuses,
canned responses and stats are for agents (`SupportAgent`: `support:inbox`).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status

from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.kit.fields import SearchText
from townsquare.kit.pagination import Page, PageParams, page_params
from townsquare.support import (
    canned,
    conversations,
    inbox,
    messages,
    ratings,
    reads,
    schemas,
    stats,
)
from townsquare.support import status as statuses
from townsquare.support.deps import SupportAgent, SupportUser
from townsquare.support.enums import ConversationStatus

router = APIRouter(prefix="/orgs/{org}", tags=["support"], route_class=TransactionalRoute)

Paging = Annotated[PageParams, Depends(page_params)]
ConversationId = Annotated[uuid.UUID, Path(description="A conversation of this organization.")]
CannedId = Annotated[uuid.UUID, Path(description="A canned response of this organization.")]
Seq = Annotated[int | None, Query(ge=0, le=2**31 - 1)]
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ASSIGNEE_PATTERN = f"^(me|unassigned|any|{_UUID})$"

_401 = "`not_authenticated`"
_403 = "`module_disabled`, `csrf_failed`, or a rule named in `code`"
_403_AGENT = "`permission_denied` (role without `support:inbox`), `module_disabled`, `csrf_failed`"
_404 = "`organization_not_found`, or `conversation_not_found` (also another customer's)"


def _errors(**described: str) -> dict[int | str, dict[str, Any]]:
    found: dict[int | str, dict[str, Any]] = {
        401: {"description": _401},
        403: {"description": _403},
        404: {"description": _404},
    }
    for key, description in described.items():
        found[int(key.removeprefix("s"))] = {"description": description}
    return found


_AGENT_ERRORS = _errors(s403=_403_AGENT)


# --- conversations ---------------------------------------------------------------------


@router.post(
    "/conversations",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.Conversation,
    responses={
        200: {"model": schemas.Conversation, "description": "A retry: the conversation opened"},
        **_errors(s403="`email_not_verified`, `module_disabled` or `csrf_failed`"),
    },
)
async def open_conversation(
    caller: SupportUser,
    body: schemas.ConversationCreate,
    session: DbSession,
    settings: AppSettings,
    response: Response,
) -> schemas.Conversation:
    """Open a conversation with its first message (seq 1), as its customer; any signed-in
    user with a verified email may. A retry with the same `client_msg_id` answers 200 with
    the conversation the first attempt opened."""
    conversation, created = await conversations.open_conversation(
        session,
        caller,
        subject=body.subject,
        body=body.body,
        client_msg_id=body.client_msg_id,
        settings=settings,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return conversation


@router.get(
    "/conversations",
    response_model=schemas.ConversationPage,
    responses=_errors(
        s400="`invalid_cursor`", s403="`agents_only`: a customer used an agents' filter"
    ),
)
async def list_conversations(
    caller: SupportUser,
    session: DbSession,
    status: ConversationStatus | None = None,
    assignee: Annotated[
        str | None,
        Query(
            pattern=_ASSIGNEE_PATTERN,
            description="Agents: `me`, `unassigned`, `any` or a user id.",
        ),
    ] = None,
    customer: Annotated[
        uuid.UUID | None, Query(description="Agents: a customer's user id.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=schemas.MAX_CONVERSATIONS_PER_PAGE)] = (
        schemas.CONVERSATIONS_PER_PAGE
    ),
) -> schemas.ConversationPage:
    """Newest activity first, each with the caller's `unread_count`. Agents get the
    organization's conversations (filters: `status`, `assignee`, `customer`); anybody
    else gets the conversations they opened (filter: `status`)."""
    filters = inbox.InboxFilters(
        status=status,
        assignee=_assignee(assignee),
        customer_id=customer,
    )
    return await inbox.list_conversations(
        session, caller, filters=filters, cursor=cursor, limit=limit
    )


def _assignee(value: str | None) -> inbox.AssigneeFilter | None:
    if value == "me":
        return "me"
    if value == "unassigned":
        return "unassigned"
    if value == "any":
        return "any"
    return uuid.UUID(value) if value is not None else None


@router.get(
    "/conversations/{conversation_id}", response_model=schemas.Conversation, responses=_errors()
)
async def get_conversation(
    caller: SupportUser, conversation_id: ConversationId, session: DbSession
) -> schemas.Conversation:
    """One conversation, as the caller's side sees it."""
    return await conversations.get_conversation(session, caller, conversation_id)


# --- messages --------------------------------------------------------------------------


@router.get(
    "/conversations/{conversation_id}/messages",
    response_model=schemas.MessagePage,
    responses=_errors(),
)
async def list_messages(
    caller: SupportUser,
    conversation_id: ConversationId,
    session: DbSession,
    after_seq: Seq = None,
    before_seq: Seq = None,
    limit: Annotated[int, Query(ge=1, le=schemas.MAX_MESSAGES_PER_PAGE)] = (
        schemas.MESSAGES_PER_PAGE
    ),
) -> schemas.MessagePage:
    """Messages in ascending seq order (customers never get internal notes, so their seqs
    have gaps: rely on `after_seq`, never on counting). `after_seq`: the first `limit`
    after it, the way to catch up after a reconnect. Only `before_seq`: the `limit` just
    before it. Neither: the newest `limit`. `next_cursor` continues in the same direction."""
    return await messages.list_messages(
        session,
        caller,
        conversation_id,
        after_seq=after_seq,
        before_seq=before_seq,
        limit=limit,
    )


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.Message,
    responses={
        200: {"model": schemas.Message, "description": "A retry: the original message"},
        **_errors(
            s403="`agents_only` (a customer sent `internal`), `module_disabled`, `csrf_failed`",
            s409="`conversation_closed`",
        ),
    },
)
async def send_message(
    caller: SupportUser,
    conversation_id: ConversationId,
    body: schemas.MessageCreate,
    session: DbSession,
    settings: AppSettings,
    response: Response,
) -> schemas.Message:
    """Write to the conversation; the message gets the next seq. A retry with a
    `client_msg_id` this sender used here answers 200 with the original. A customer's
    message on a resolved conversation reopens it (a system message comes first)."""
    message, created = await messages.send_message(
        session,
        caller,
        conversation_id,
        body=body.body,
        internal=body.internal,
        client_msg_id=body.client_msg_id,
        settings=settings,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return message


@router.post(
    "/conversations/{conversation_id}/read", response_model=schemas.ReadCursor, responses=_errors()
)
async def mark_read(
    caller: SupportUser,
    conversation_id: ConversationId,
    body: schemas.ReadCursorUpdate,
    session: DbSession,
) -> schemas.ReadCursor:
    """Move the caller's own read cursor forward to `seq` (never back; a seq beyond the
    newest the caller can see is lowered to it). Other people's cursors do not move."""
    return await reads.mark_read(session, caller, conversation_id, seq=body.seq)


@router.post(
    "/conversations/{conversation_id}/rating",
    response_model=schemas.Conversation,
    responses=_errors(
        s403="`only_the_customer_rates`, `module_disabled`, `csrf_failed`",
        s409="`conversation_not_resolved` or `already_rated`",
    ),
)
async def rate_conversation(
    caller: SupportUser,
    conversation_id: ConversationId,
    body: schemas.RatingCreate,
    session: DbSession,
) -> schemas.Conversation:
    """The customer rates their resolved conversation, once (1-5, optional comment)."""
    return await ratings.rate(
        session, caller, conversation_id, rating=body.rating, comment=body.comment
    )


# --- assignment and statuses (agents) --------------------------------------------------


@router.post(
    "/conversations/{conversation_id}/assign",
    response_model=schemas.Conversation,
    responses={
        **_AGENT_ERRORS,
        409: {"description": "`conversation_closed`"},
        422: {"description": "`not_an_agent` on `assignee_id`"},
    },
)
async def assign_conversation(
    ctx: SupportAgent,
    conversation_id: ConversationId,
    body: schemas.Assignment,
    session: DbSession,
    settings: AppSettings,
) -> schemas.Conversation:
    """Assign a member whose role has `support:inbox` (status `assigned`; they become a
    participant), or unassign with null (status `open`). Writes a system message."""
    return await statuses.assign(
        session, ctx, conversation_id, assignee_id=body.assignee_id, settings=settings
    )


_TRANSITION_ERRORS: dict[int | str, dict[str, Any]] = {
    **_AGENT_ERRORS,
    409: {"description": "`conversation_closed` or `invalid_status_transition`"},
}


@router.post(
    "/conversations/{conversation_id}/resolve",
    response_model=schemas.Conversation,
    responses=_TRANSITION_ERRORS,
)
async def resolve_conversation(
    ctx: SupportAgent, conversation_id: ConversationId, session: DbSession, settings: AppSettings
) -> schemas.Conversation:
    """Resolve an open or assigned conversation; the customer may then rate it."""
    return await statuses.resolve(session, ctx, conversation_id, settings=settings)


@router.post(
    "/conversations/{conversation_id}/close",
    response_model=schemas.Conversation,
    responses=_TRANSITION_ERRORS,
)
async def close_conversation(
    ctx: SupportAgent, conversation_id: ConversationId, session: DbSession, settings: AppSettings
) -> schemas.Conversation:
    """Close the conversation for good: nobody writes to it again (final)."""
    return await statuses.close(session, ctx, conversation_id, settings=settings)


@router.post(
    "/conversations/{conversation_id}/reopen",
    response_model=schemas.Conversation,
    responses=_TRANSITION_ERRORS,
)
async def reopen_conversation(
    ctx: SupportAgent, conversation_id: ConversationId, session: DbSession, settings: AppSettings
) -> schemas.Conversation:
    """Reopen a resolved conversation (`assigned` if it has an assignee, else `open`)."""
    return await statuses.reopen(session, ctx, conversation_id, settings=settings)


# --- canned responses (agents) ---------------------------------------------------------


@router.get(
    "/canned-responses", response_model=Page[schemas.CannedResponse], responses=_AGENT_ERRORS
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
    responses={**_AGENT_ERRORS, 409: {"description": "`short_code_taken`"}},
)
async def create_canned_response(
    ctx: SupportAgent, body: schemas.CannedResponseCreate, session: DbSession
) -> schemas.CannedResponse:
    row = await canned.create_canned(session, ctx, short_code=body.short_code, text=body.text)
    return schemas.CannedResponse.model_validate(row)


@router.get(
    "/canned-responses/{canned_id}",
    response_model=schemas.CannedResponse,
    responses=_AGENT_ERRORS,
)
async def get_canned_response(
    ctx: SupportAgent, canned_id: CannedId, session: DbSession
) -> schemas.CannedResponse:
    return schemas.CannedResponse.model_validate(await canned.get_canned(session, ctx, canned_id))


@router.patch(
    "/canned-responses/{canned_id}",
    response_model=schemas.CannedResponse,
    responses={**_AGENT_ERRORS, 409: {"description": "`short_code_taken`"}},
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
    responses=_AGENT_ERRORS,
)
async def delete_canned_response(
    ctx: SupportAgent, canned_id: CannedId, session: DbSession
) -> None:
    await canned.delete_canned(session, ctx, canned_id)


# --- stats (agents) --------------------------------------------------------------------


@router.get(
    "/support/stats",
    response_model=schemas.SupportStats,
    responses={**_AGENT_ERRORS, 422: {"description": "`invalid_range` or `range_too_long`"}},
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
