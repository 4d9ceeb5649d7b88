"""Email continuity: agent replies a customer has not read go out in one email notice.

An agent's public reply sets the conversation's `notice_due_at` (if no notice is due
yet) to `SUPPORT_EMAIL_NOTICE_DELAY_SECONDS` later; the customer reading everything or
writing clears it. When it comes, one email through the outbox carries the text of the
agent replies after both the customer's read cursor and `notice_sent_seq` (the replies
earlier notices carried) and a link back (`SUPPORT_CONVERSATION_URL`); replies written
meanwhile ride along, later ones make the next notice due. Internal notes are never in
it: only public `text` and `attachment` messages whose sender wrote as an agent. An
attachment is named, not linked (its download links expire within minutes).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.email.service import enqueue_email
from townsquare.orgs.models import Organization
from townsquare.support import reads, views
from townsquare.support.enums import ChatMessageType, ChatParticipantRole, ConversationStatus
from townsquare.support.models import ChatMessage, Conversation

TEMPLATE = "support_reply"
MAX_REPLIES_SHOWN = 20
"""The newest replies an email shows in full; it says how many earlier ones it left out."""


def conversation_url(settings: Settings, org_slug: str, conversation_id: object) -> str:
    """The link back in a notice (`SUPPORT_CONVERSATION_URL`): the client app's page."""
    return settings.SUPPORT_CONVERSATION_URL.format(
        public_url=settings.PUBLIC_URL.rstrip("/"),
        org_slug=org_slug,
        conversation_id=conversation_id,
    )


async def send_due_notices(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Email the customers of up to `WORKER_BATCH_SIZE` conversations whose notice is due;
    returns how many emails were queued. Rows are claimed with SKIP LOCKED and checked
    again under the lock, so concurrent workers send each notice exactly once."""
    claimed = (
        await session.scalars(
            select(Conversation)
            .where(Conversation.notice_due_at.is_not(None), Conversation.notice_due_at <= now)
            .order_by(Conversation.notice_due_at, Conversation.id)
            .limit(settings.WORKER_BATCH_SIZE)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).all()
    sent = 0
    for conversation in claimed:
        if conversation.notice_due_at is None or conversation.notice_due_at > now:
            continue
        conversation.notice_due_at = None
        if await _notify(session, conversation, settings=settings):
            sent += 1
    await session.flush()
    return sent


def _unread_replies(conversation: Conversation, after_seq: int) -> list[ColumnElement[bool]]:
    return [
        ChatMessage.conversation_id == conversation.id,
        ChatMessage.seq > after_seq,
        ChatMessage.internal.is_(False),
        ChatMessage.sender_role == ChatParticipantRole.agent,
        ChatMessage.type.in_([ChatMessageType.text, ChatMessageType.attachment]),
    ]


async def _notify(session: AsyncSession, conversation: Conversation, *, settings: Settings) -> bool:
    if conversation.status == ConversationStatus.closed:
        return False
    customer = await session.get(User, conversation.customer_id)
    if customer is None or not customer.is_active:
        return False
    read = await reads.cursor_of(session, conversation.id, conversation.customer_id)
    after = max(read, conversation.notice_sent_seq)
    conditions = _unread_replies(conversation, after)
    total = int(
        await session.scalar(select(func.count()).select_from(ChatMessage).where(*conditions)) or 0
    )
    if total == 0:
        return False
    newest = list(
        await session.scalars(
            select(ChatMessage)
            .where(*conditions)
            .order_by(ChatMessage.seq.desc())
            .limit(MAX_REPLIES_SHOWN)
        )
    )
    newest.reverse()
    org = await session.get(Organization, conversation.organization_id)
    assert org is not None
    names = await views.display_names(session, [reply.sender_id for reply in newest])
    await enqueue_email(
        session,
        to=customer.email,
        template=TEMPLATE,
        context={
            "customer_name": customer.display_name,
            "organization_name": org.name,
            "subject": conversation.subject,
            "replies": [
                {
                    "sender_name": (names.get(reply.sender_id) if reply.sender_id else None)
                    or org.name,
                    "body": reply.body,
                    "attachment_name": reply.attachment_filename,
                }
                for reply in newest
            ],
            "earlier_count": total - len(newest),
            "conversation_url": conversation_url(settings, org.slug, conversation.id),
        },
        settings=settings,
    )
    conversation.notice_sent_seq = newest[-1].seq
    return True
