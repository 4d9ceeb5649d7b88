"""Conversation lists: an organization's inbox for its agents, a customer's own
conversations in one organization, and a person's conversations across organizations.

Newest activity first, paged by a keyset cursor over (last activity, id), so a deep page
costs what the first one does. Every item carries the reader's own `unread_count`.
Customers' lists order by the newest message they can see, so that an internal note
never moves a conversation in them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from townsquare.auth.models import User
from townsquare.kit.pagination import InvalidCursor, decode_cursor, encode_cursor
from townsquare.orgs.enums import Module
from townsquare.orgs.models import Organization, OrganizationModule
from townsquare.support import schemas, views
from townsquare.support.context import SupportCaller
from townsquare.support.enums import ConversationStatus
from townsquare.support.errors import AgentsOnly
from townsquare.support.models import ChatMessage, ChatParticipant, Conversation
from townsquare.support.reads import unread_condition

AssigneeFilter = Literal["me", "unassigned", "any"] | uuid.UUID


@dataclass(frozen=True)
class InboxFilters:
    """`assignee` and `customer` are the agents' filters; `status` is anyone's."""

    status: ConversationStatus | None = None
    assignee: AssigneeFilter | None = None
    customer_id: uuid.UUID | None = None


@dataclass(frozen=True)
class _Listing:
    """Conversations with the reader's cursor and unread count, and the activity column
    the list orders by."""

    statement: Select[Conversation, int, int]
    activity: InstrumentedAttribute[datetime]

    def where(self, *conditions: ColumnElement[bool]) -> _Listing:
        return _Listing(self.statement.where(*conditions), self.activity)


def _listing(reader_id: uuid.UUID, *, as_customer: bool) -> _Listing:
    """`as_customer`: the reader is the customer of every row (no notes exist for them);
    otherwise an agent, who is the customer only of the rows they opened themselves."""
    notes_hidden: ColumnElement[bool] = (
        true() if as_customer else Conversation.customer_id == reader_id
    )
    mine = aliased(ChatParticipant)
    cursor = func.coalesce(mine.last_read_seq, 0)
    unread = (
        select(func.count())
        .select_from(ChatMessage)
        .where(*unread_condition(Conversation.id, reader_id, cursor, public=notes_hidden))
        .correlate(Conversation, mine)
        .scalar_subquery()
    )
    statement = select(Conversation, cursor, unread).outerjoin(
        mine, and_(mine.conversation_id == Conversation.id, mine.user_id == reader_id)
    )
    activity = (
        Conversation.last_public_activity_at if as_customer else Conversation.last_activity_at
    )
    return _Listing(statement, activity)


def _after(cursor: str | None, activity: InstrumentedAttribute[datetime]) -> ColumnElement[bool]:
    if cursor is None:
        return true()
    values = decode_cursor(cursor)
    at_text, id_text = values.get("at"), values.get("id")
    if not isinstance(at_text, str) or not isinstance(id_text, str):
        raise InvalidCursor()
    try:
        at = datetime.fromisoformat(at_text)
        last_id = uuid.UUID(id_text)
    except ValueError as exc:
        raise InvalidCursor() from exc
    if at.tzinfo is None:
        raise InvalidCursor()
    return or_(activity < at, and_(activity == at, Conversation.id < last_id))


async def _page(
    session: AsyncSession, listing: _Listing, *, cursor: str | None, limit: int
) -> tuple[list[tuple[Conversation, int, int]], str | None]:
    activity = listing.activity
    statement = (
        listing.statement.where(_after(cursor, activity))
        .order_by(activity.desc(), Conversation.id.desc())
        .limit(limit + 1)
    )
    rows = [(row[0], int(row[1]), int(row[2])) for row in (await session.execute(statement)).all()]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1][0]
        at: datetime = getattr(last, activity.key)
        next_cursor = encode_cursor({"at": at.isoformat(), "id": str(last.id)})
    return rows, next_cursor


def _out(
    rows: list[tuple[Conversation, int, int]],
    names: views.Names,
    reader_id: uuid.UUID,
    *,
    agent: bool,
) -> list[schemas.Conversation]:
    return [
        views.conversation(
            row,
            names,
            public=not agent or row.customer_id == reader_id,
            last_read_seq=cursor,
            unread_count=unread,
        )
        for row, cursor, unread in rows
    ]


async def list_conversations(
    session: AsyncSession,
    caller: SupportCaller,
    *,
    filters: InboxFilters,
    cursor: str | None,
    limit: int,
) -> schemas.ConversationPage:
    """Agents: the organization's conversations, filtered. Anyone else: their own (the
    agents' filters `assignee` and `customer` answer 403 `agents_only`)."""
    me = caller.user.id
    agent = caller.is_agent
    if not agent and (filters.assignee is not None or filters.customer_id is not None):
        raise AgentsOnly("Only agents filter by assignee or customer.")
    listing = _listing(me, as_customer=not agent).where(
        Conversation.organization_id == caller.org.id
    )
    if not agent:
        listing = listing.where(Conversation.customer_id == me)
    if filters.status is not None:
        listing = listing.where(Conversation.status == filters.status)
    if filters.customer_id is not None:
        listing = listing.where(Conversation.customer_id == filters.customer_id)
    assignee = filters.assignee
    if assignee == "me":
        listing = listing.where(Conversation.assignee_id == me)
    elif assignee == "unassigned":
        listing = listing.where(Conversation.assignee_id.is_(None))
    elif isinstance(assignee, uuid.UUID):
        listing = listing.where(Conversation.assignee_id == assignee)
    rows, next_cursor = await _page(session, listing, cursor=cursor, limit=limit)
    names = await views.conversation_names(session, [row[0] for row in rows])
    return schemas.ConversationPage(
        items=_out(rows, names, me, agent=agent), next_cursor=next_cursor
    )


async def list_for_user(
    session: AsyncSession, user: User, *, cursor: str | None, limit: int
) -> tuple[list[tuple[schemas.Conversation, Organization]], str | None]:
    """The conversations `user` opened, in every organization whose support is on, as
    their customer sees them, each with its organization."""
    support_on = exists().where(
        OrganizationModule.organization_id == Conversation.organization_id,
        OrganizationModule.module == Module.support,
    )
    listing = _listing(user.id, as_customer=True).where(
        Conversation.customer_id == user.id, support_on
    )
    rows, next_cursor = await _page(session, listing, cursor=cursor, limit=limit)
    conversations = [row[0] for row in rows]
    names = await views.conversation_names(session, conversations)
    org_ids = {c.organization_id for c in conversations}
    orgs: dict[uuid.UUID, Organization] = {}
    if org_ids:
        found = await session.scalars(select(Organization).where(Organization.id.in_(org_ids)))
        orgs = {org.id: org for org in found.all()}
    items = _out(rows, names, user.id, agent=False)
    return [
        (item, orgs[c.organization_id]) for item, c in zip(items, conversations, strict=True)
    ], next_cursor
