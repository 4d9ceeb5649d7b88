"""The support chat (`/api/v1/orgs/{org}/...`): conversations, messages, read cursors,
attachments, assignment and statuses, ratings, canned responses and stats.

Routes that customers and agents share take any signed-in user (`SupportUser`; member of
the organization or not) and show each only what their side may see: a customer sees
only the conversations they opened, never an internal note. Assignment, statuses,
canned responses and stats are for agents (`SupportAgent`: `support:inbox`). This
`router` holds the conversations and their statuses and includes the messages routes
(`messages_router.py`) and the agents' canned responses and stats (`canned_router.py`).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.support import (
    canned_router,
    conversations,
    departures,  # noqa: F401  (registers the inbox's handler of members who leave)
    inbox,
    messages_router,
    ratings,
    schemas,
)
from townsquare.support import status as statuses
from townsquare.support.deps import SupportAgent, SupportUser
from townsquare.support.enums import ConversationStatus
from townsquare.support.params import AGENT_ERRORS, ConversationId, Responses, errors

router = APIRouter(prefix="/orgs/{org}", tags=["support"], route_class=TransactionalRoute)

_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ASSIGNEE_PATTERN = f"^(me|unassigned|any|{_UUID})$"


# --- conversations ---------------------------------------------------------------------


@router.post(
    "/conversations",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.Conversation,
    responses={
        200: {"model": schemas.Conversation, "description": "A retry: the conversation opened"},
        **errors(s403="`email_not_verified`, `module_disabled` or `csrf_failed`"),
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
    responses=errors(
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
    "/conversations/{conversation_id}", response_model=schemas.Conversation, responses=errors()
)
async def get_conversation(
    caller: SupportUser, conversation_id: ConversationId, session: DbSession
) -> schemas.Conversation:
    """One conversation, as the caller's side sees it."""
    return await conversations.get_conversation(session, caller, conversation_id)


@router.post(
    "/conversations/{conversation_id}/rating",
    response_model=schemas.Conversation,
    responses=errors(
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
        **AGENT_ERRORS,
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


_TRANSITION_ERRORS: Responses = {
    **AGENT_ERRORS,
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


router.include_router(messages_router.router)
router.include_router(canned_router.router)
