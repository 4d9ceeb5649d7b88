"""Resolving conversations that wait on their customer (`SUPPORT_AUTO_RESOLVE_HOURS`).

A conversation waits on its customer while it is active (open or assigned) and the
newest public message a person wrote in it is an agent's reply (internal notes are not
seen by the customer, so they neither count nor restart the wait). The wait counts from
the newest public message, system messages included: an agent who reopens or reassigns
a conversation starts it again, so nothing is resolved the moment after a person acted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.config import Settings
from townsquare.support import status
from townsquare.support.models import Conversation


def _waiting_since_before(cutoff: datetime) -> ColumnElement[bool]:
    return and_(
        Conversation.status.in_(status.ACTIVE),
        Conversation.last_agent_message_at <= cutoff,
        or_(
            Conversation.last_customer_message_at.is_(None),
            Conversation.last_customer_message_at < Conversation.last_agent_message_at,
        ),
        Conversation.last_public_activity_at <= cutoff,
    )


def _still_waiting(conversation: Conversation, cutoff: datetime) -> bool:
    replied = conversation.last_agent_message_at
    answered = conversation.last_customer_message_at
    return (
        conversation.status in status.ACTIVE
        and replied is not None
        and replied <= cutoff
        and (answered is None or answered < replied)
        and conversation.last_public_activity_at <= cutoff
    )


def resolution_notice(hours: int) -> str:
    unit = "hour" if hours == 1 else "hours"
    return f"Resolved automatically: no answer from the customer for {hours} {unit}."


async def resolve_waiting(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Resolve up to `WORKER_BATCH_SIZE` conversations that have waited on their customer
    for `SUPPORT_AUTO_RESOLVE_HOURS` (none when it is 0), each with a system message, an
    unattended audit entry and events. Rows are claimed with SKIP LOCKED (a conversation
    someone is writing to is left for the next sweep) and checked again under the lock,
    so concurrent workers never resolve one twice."""
    hours = settings.SUPPORT_AUTO_RESOLVE_HOURS
    if hours <= 0:
        return 0
    cutoff = now - timedelta(hours=hours)
    claimed = (
        await session.scalars(
            select(Conversation)
            .where(_waiting_since_before(cutoff))
            .order_by(Conversation.last_public_activity_at, Conversation.id)
            .limit(settings.WORKER_BATCH_SIZE)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).all()
    resolved = 0
    for conversation in claimed:
        if not _still_waiting(conversation, cutoff):
            continue
        await status.resolve_unattended(
            session, conversation, body=resolution_notice(hours), settings=settings
        )
        resolved += 1
    return resolved
