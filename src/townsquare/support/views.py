"""Rows to response types, as one reader may see them (customers never see notes).

Attachments carry a signed download URL; only messages presented to someone who may see
the conversation (its customer, the organization's agents) are signed, and every path
that presents messages found the conversation as visible to the caller first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.kit import clock
from townsquare.media.filenames import content_disposition
from townsquare.media.inspect import INLINE_TYPES
from townsquare.storage.base import DownloadOptions, Storage
from townsquare.support import schemas
from townsquare.support.models import ChatMessage, Conversation

Names = dict[uuid.UUID, str]
"""Display names by user id."""


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_at: datetime


Urls = dict[uuid.UUID, SignedUrl]
"""Download URLs of attachments by message id."""


async def display_names(session: AsyncSession, ids: Iterable[uuid.UUID | None]) -> Names:
    """The display names of the users in `ids`, in one query."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return {row[0]: row[1] for row in rows}


async def conversation_names(session: AsyncSession, conversations: Iterable[Conversation]) -> Names:
    """Display names of the customers and assignees of `conversations`."""
    ids: list[uuid.UUID | None] = []
    for conversation in conversations:
        ids += [conversation.customer_id, conversation.assignee_id]
    return await display_names(session, ids)


def _person(user_id: uuid.UUID | None, names: Names) -> schemas.Person | None:
    if user_id is None:
        return None
    return schemas.Person(id=user_id, display_name=names.get(user_id, ""))


def _download_options(row: ChatMessage) -> DownloadOptions:
    kind = row.attachment_content_type or "application/octet-stream"
    return DownloadOptions(
        content_type=kind,
        content_disposition=content_disposition(
            row.attachment_filename or "file", inline=kind in INLINE_TYPES
        ),
    )


async def sign_attachments(
    rows: Sequence[ChatMessage], *, storage: Storage, settings: Settings
) -> Urls:
    """Short-lived download URLs (`MEDIA_URL_TTL_SECONDS`) of the rows' attachments."""
    files = [row for row in rows if row.attachment_key is not None]
    if not files:
        return {}
    expires_at = clock.now() + timedelta(seconds=settings.MEDIA_URL_TTL_SECONDS)
    urls = await asyncio.gather(
        *(
            storage.presigned_get(
                row.attachment_key or "", options=_download_options(row), expires_at=expires_at
            )
            for row in files
        )
    )
    return {row.id: SignedUrl(url, expires_at) for row, url in zip(files, urls, strict=True)}


async def present_messages(
    session: AsyncSession, rows: Sequence[ChatMessage], *, storage: Storage, settings: Settings
) -> list[schemas.Message]:
    """The rows with their senders' names and attachments' URLs, for a caller who may see
    their conversation."""
    names = await display_names(session, [row.sender_id for row in rows])
    urls = await sign_attachments(rows, storage=storage, settings=settings)
    return [message(row, names, urls) for row in rows]


def message(row: ChatMessage, names: Names, urls: Urls | None = None) -> schemas.Message:
    sender = None
    if row.sender_id is not None and row.sender_role is not None:
        sender = schemas.Sender(
            id=row.sender_id, display_name=names.get(row.sender_id, ""), role=row.sender_role
        )
    attachment = None
    if row.attachment_key is not None:
        signed = (urls or {}).get(row.id)
        attachment = schemas.MessageAttachment(
            filename=row.attachment_filename or "",
            content_type=row.attachment_content_type or "application/octet-stream",
            size=row.attachment_size or 0,
            width=row.attachment_width,
            height=row.attachment_height,
            url=signed.url if signed is not None else None,
            url_expires_at=signed.expires_at if signed is not None else None,
        )
    return schemas.Message(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        type=row.type,
        system_event=row.system_event,
        sender=sender,
        body=row.body,
        internal=row.internal,
        attachment=attachment,
        client_msg_id=row.client_msg_id,
        created_at=row.created_at,
    )


def visible_last_seq(conversation: Conversation, *, public: bool) -> int:
    return conversation.last_public_seq if public else conversation.last_seq


def state(conversation: Conversation, names: Names, *, public: bool) -> schemas.ConversationState:
    """The conversation without per-reader fields; `public`: as its customer sees it."""
    customer = _person(conversation.customer_id, names)
    assert customer is not None
    return schemas.ConversationState(
        id=conversation.id,
        organization_id=conversation.organization_id,
        subject=conversation.subject,
        status=conversation.status,
        customer=customer,
        assignee=_person(conversation.assignee_id, names),
        last_seq=visible_last_seq(conversation, public=public),
        last_activity_at=(
            conversation.last_public_activity_at if public else conversation.last_activity_at
        ),
        created_at=conversation.created_at,
        resolved_at=conversation.resolved_at,
        closed_at=conversation.closed_at,
        rating=conversation.rating,
        rating_comment=conversation.rating_comment,
        rated_at=conversation.rated_at,
    )


def conversation(
    row: Conversation, names: Names, *, public: bool, last_read_seq: int, unread_count: int
) -> schemas.Conversation:
    """The conversation for one reader, with their cursor and unread count."""
    return schemas.Conversation(
        **state(row, names, public=public).model_dump(),
        last_read_seq=last_read_seq,
        unread_count=unread_count,
    )
