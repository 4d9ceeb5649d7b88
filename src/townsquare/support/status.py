"""Statuses and assignment: open → assigned ↔ open → resolved → (reopened) … → closed.

Only agents change a status or an assignment (a customer's only lever is a message on a
resolved conversation, which reopens it). Every change writes a `system` message, seen
by both sides, and an audit entry, under the conversation's row lock. `closed` is final.
An active conversation is `assigned` while it has an assignee and `open` otherwise;
assigning or unassigning a resolved conversation changes its assignee and leaves it
resolved, and reopening it picks `assigned` or `open` by the same rule.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.errors import field_error
from townsquare.kit import clock
from townsquare.orgs import audit
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import Permission
from townsquare.orgs.models import Membership
from townsquare.orgs.permissions import role_has
from townsquare.support import conversations, live, reads, schemas, views
from townsquare.support.access import get_visible
from townsquare.support.context import SupportCaller
from townsquare.support.enums import ChatParticipantRole, ConversationStatus, SystemEvent
from townsquare.support.errors import ConversationClosed, InvalidStatusTransition
from townsquare.support.models import Conversation
from townsquare.support.timeline import write_system_message

ACTIVE = (ConversationStatus.open, ConversationStatus.assigned)


def _active_status(conversation: Conversation) -> ConversationStatus:
    return ConversationStatus.assigned if conversation.assignee_id else ConversationStatus.open


async def _lock(session: AsyncSession, ctx: OrgContext, conversation_id: uuid.UUID) -> Conversation:
    conversation = await get_visible(
        session, SupportCaller.of(ctx), conversation_id, for_update=True
    )
    if conversation.status == ConversationStatus.closed:
        raise ConversationClosed()
    return conversation


async def _announce(
    session: AsyncSession,
    ctx: OrgContext,
    conversation: Conversation,
    *,
    event: SystemEvent,
    body: str,
    data: dict[str, Any] | None = None,
    settings: Settings,
) -> schemas.Conversation:
    await write_system_message(
        session,
        conversation,
        actor=ctx.user,
        role=ChatParticipantRole.agent,
        event=event,
        body=body,
        settings=settings,
    )
    await audit.record(
        session,
        ctx,
        f"conversation.{event.value}",
        target=("conversation", conversation.id),
        data=data,
    )
    live.conversation_updated(
        session, conversation, await views.conversation_names(session, [conversation])
    )
    return await conversations.present(session, SupportCaller.of(ctx), conversation)


async def _assignable(
    session: AsyncSession, ctx: OrgContext, conversation: Conversation, user_id: uuid.UUID
) -> User:
    """A member of the organization whose role has `support:inbox`, or a 422."""
    row = (
        await session.execute(
            select(User, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.organization_id == ctx.org.id, User.id == user_id)
        )
    ).first()
    if row is None or not role_has(row[1], Permission.support_inbox):
        raise field_error(
            "assignee_id",
            "Not a member of this organization whose role may answer support conversations.",
            "not_an_agent",
        )
    if user_id == conversation.customer_id:
        raise field_error(
            "assignee_id", "The customer cannot be assigned their own conversation.", "not_an_agent"
        )
    user: User = row[0]
    return user


async def assign(
    session: AsyncSession,
    ctx: OrgContext,
    conversation_id: uuid.UUID,
    *,
    assignee_id: uuid.UUID | None,
    settings: Settings,
) -> schemas.Conversation:
    """Assign an agent (who becomes a participant) or, with None, unassign. Assigning the
    current assignee again changes nothing and writes nothing."""
    conversation = await _lock(session, ctx, conversation_id)
    if assignee_id == conversation.assignee_id:
        return await conversations.present(session, SupportCaller.of(ctx), conversation)
    assignee = (
        await _assignable(session, ctx, conversation, assignee_id)
        if assignee_id is not None
        else None
    )
    previous = conversation.assignee_id
    conversation.assignee_id = assignee_id
    if conversation.status in ACTIVE:
        conversation.status = _active_status(conversation)
    data = {
        "assignee_id": str(assignee_id) if assignee_id else None,
        "previous_assignee_id": str(previous) if previous else None,
    }
    actor = ctx.user.display_name
    if assignee is None:
        return await _announce(
            session,
            ctx,
            conversation,
            event=SystemEvent.unassigned,
            body=f"{actor} unassigned the conversation.",
            data=data,
            settings=settings,
        )
    await reads.advance(session, conversation, assignee.id, ChatParticipantRole.agent, 0)
    body = (
        f"{actor} took the conversation."
        if assignee.id == ctx.user.id
        else f"{actor} assigned the conversation to {assignee.display_name}."
    )
    return await _announce(
        session,
        ctx,
        conversation,
        event=SystemEvent.assigned,
        body=body,
        data=data,
        settings=settings,
    )


async def resolve(
    session: AsyncSession, ctx: OrgContext, conversation_id: uuid.UUID, *, settings: Settings
) -> schemas.Conversation:
    """Mark an open or assigned conversation resolved (409 otherwise)."""
    conversation = await _lock(session, ctx, conversation_id)
    if conversation.status not in ACTIVE:
        raise InvalidStatusTransition("Only an open or assigned conversation can be resolved.")
    conversation.status = ConversationStatus.resolved
    conversation.resolved_at = clock.now()
    return await _announce(
        session,
        ctx,
        conversation,
        event=SystemEvent.resolved,
        body=f"{ctx.user.display_name} resolved the conversation.",
        settings=settings,
    )


async def close(
    session: AsyncSession, ctx: OrgContext, conversation_id: uuid.UUID, *, settings: Settings
) -> schemas.Conversation:
    """Close the conversation for good: nobody writes to it again."""
    conversation = await _lock(session, ctx, conversation_id)
    conversation.status = ConversationStatus.closed
    conversation.closed_at = clock.now()
    conversation.notice_due_at = None
    return await _announce(
        session,
        ctx,
        conversation,
        event=SystemEvent.closed,
        body=f"{ctx.user.display_name} closed the conversation.",
        settings=settings,
    )


async def reopen(
    session: AsyncSession, ctx: OrgContext, conversation_id: uuid.UUID, *, settings: Settings
) -> schemas.Conversation:
    """Reopen a resolved conversation (409 for any other status; closed is final)."""
    conversation = await _lock(session, ctx, conversation_id)
    if conversation.status != ConversationStatus.resolved:
        raise InvalidStatusTransition("Only a resolved conversation can be reopened.")
    conversation.status = _active_status(conversation)
    conversation.resolved_at = None
    return await _announce(
        session,
        ctx,
        conversation,
        event=SystemEvent.reopened,
        body=f"{ctx.user.display_name} reopened the conversation.",
        settings=settings,
    )


async def reopen_for_customer(
    session: AsyncSession, caller: SupportCaller, conversation: Conversation, *, settings: Settings
) -> None:
    """The customer wrote to their resolved conversation (locked by the caller): it is
    active again, announced by a system message before their message."""
    conversation.status = _active_status(conversation)
    conversation.resolved_at = None
    await write_system_message(
        session,
        conversation,
        actor=caller.user,
        role=ChatParticipantRole.customer,
        event=SystemEvent.reopened,
        body=f"{caller.user.display_name} wrote again; the conversation is open again.",
        settings=settings,
    )
    # The customer need not be a member, so the entry has no member actor; it names them.
    await audit.record_unattended(
        session,
        conversation.organization_id,
        "conversation.reopened",
        target=("conversation", conversation.id),
        data={"by": "customer_message", "customer_id": str(caller.user.id)},
    )
    live.conversation_updated(
        session, conversation, await views.conversation_names(session, [conversation])
    )


async def resolve_unattended(
    session: AsyncSession, conversation: Conversation, *, body: str, settings: Settings
) -> None:
    """Resolve an active conversation (locked by the caller) on Townsquare's own account,
    as the auto-resolve duty does: a system message without a sender, an entry without an
    actor."""
    conversation.status = ConversationStatus.resolved
    conversation.resolved_at = clock.now()
    await write_system_message(
        session,
        conversation,
        actor=None,
        role=None,
        event=SystemEvent.resolved,
        body=body,
        settings=settings,
    )
    await audit.record_unattended(
        session,
        conversation.organization_id,
        "conversation.resolved",
        target=("conversation", conversation.id),
        data={"by": "townsquare"},
    )
    names = await views.conversation_names(session, [conversation])
    live.conversation_updated(session, conversation, names)


async def unassign_departed(
    session: AsyncSession,
    ctx: OrgContext,
    user_id: uuid.UUID,
    *,
    left: bool,
    settings: Settings,
) -> int:
    """Unassign every conversation of `ctx.org` (closed ones aside) assigned to `user_id`,
    who left the organization or whose role no longer works the inbox; returns how many.
    Each gets a system message and an audit entry, as an unassignment by hand does."""
    assigned = (
        await session.scalars(
            select(Conversation)
            .where(
                Conversation.organization_id == ctx.org.id,
                Conversation.assignee_id == user_id,
                Conversation.status != ConversationStatus.closed,
            )
            .order_by(Conversation.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    name = await session.scalar(select(User.display_name).where(User.id == user_id))
    reason = "left the organization" if left else "no longer answers support conversations"
    for conversation in assigned:
        conversation.assignee_id = None
        if conversation.status in ACTIVE:
            conversation.status = _active_status(conversation)
        await _announce(
            session,
            ctx,
            conversation,
            event=SystemEvent.unassigned,
            body=f"{name or 'The assignee'} {reason}; the conversation is unassigned.",
            data={"assignee_id": None, "previous_assignee_id": str(user_id)},
            settings=settings,
        )
    return len(assigned)
