"""A conversation's messages (`/api/v1/orgs/{org}/conversations/{id}/...`): reading them,
writing text, uploading attachments, and the caller's read cursor. Customers and agents
share these routes; each sees what their side may."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from townsquare.body_limit import bounds_its_own_body
from townsquare.config import AppSettings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.media.multipart import StreamingForm, upload_openapi
from townsquare.support import attachments, messages, reads, schemas
from townsquare.support.deps import SupportUser
from townsquare.support.models import CAPTION_MAX, CLIENT_MSG_ID_MAX
from townsquare.support.params import AppStorage, ConversationId, Seq, errors

router = APIRouter(route_class=TransactionalRoute)

_ATTACHMENT_BODY = upload_openapi(
    {
        "body": {"type": "string", "maxLength": CAPTION_MAX},
        "client_msg_id": {
            "type": "string",
            "maxLength": CLIENT_MSG_ID_MAX,
            "pattern": "^[A-Za-z0-9._:-]+$",
        },
    }
)


@router.get(
    "/conversations/{conversation_id}/messages",
    response_model=schemas.MessagePage,
    responses=errors(),
)
async def list_messages(
    caller: SupportUser,
    conversation_id: ConversationId,
    session: DbSession,
    settings: AppSettings,
    storage: AppStorage,
    after_seq: Seq = None,
    before_seq: Seq = None,
    limit: Annotated[int, Query(ge=1, le=schemas.MAX_MESSAGES_PER_PAGE)] = (
        schemas.MESSAGES_PER_PAGE
    ),
) -> schemas.MessagePage:
    """Messages in ascending seq order (customers never get internal notes, so their seqs
    have gaps: rely on `after_seq`, never on counting). `after_seq`: the first `limit`
    after it, the way to catch up after a reconnect. Only `before_seq`: the `limit` just
    before it. Neither: the newest `limit`. `next_cursor` continues in the same direction.
    Attachments come with a fresh short-lived download URL."""
    return await messages.list_messages(
        session,
        caller,
        conversation_id,
        after_seq=after_seq,
        before_seq=before_seq,
        limit=limit,
        storage=storage,
        settings=settings,
    )


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.Message,
    responses={
        200: {"model": schemas.Message, "description": "A retry: the original message"},
        **errors(
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
    storage: AppStorage,
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
        storage=storage,
        settings=settings,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return message


@router.post(
    "/conversations/{conversation_id}/attachments",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.Message,
    openapi_extra=_ATTACHMENT_BODY,
    responses={
        200: {"model": schemas.Message, "description": "A retry: the original message"},
        **errors(
            s403="`permission_denied` (an agent whose role lacks `chat:attachments`), "
            "`module_disabled`, `csrf_failed`",
            s409="`conversation_closed`",
            s413="`file_too_large` (over `SUPPORT_ATTACHMENT_MAX_BYTES`) or `payload_too_large`",
            s415="`unsupported_file_type`: not an image or PDF whose bytes, declared type and "
            "extension agree",
            s422="`empty_file`, `invalid_image`, `image_too_large`, `invalid_multipart`, or a "
            "form field named in `errors`",
        ),
    },
)
@bounds_its_own_body
async def upload_attachment(
    request: Request,
    caller: SupportUser,
    conversation_id: ConversationId,
    session: DbSession,
    settings: AppSettings,
    storage: AppStorage,
    response: Response,
) -> schemas.Message:
    """Upload a file to the conversation as multipart/form-data (`file`; optional `body`,
    a caption, and `client_msg_id`), as its customer or as an agent: a JPEG, PNG, GIF,
    WebP or AVIF image or a PDF of at most `SUPPORT_ATTACHMENT_MAX_BYTES`, checked by its
    bytes. It becomes an `attachment` message with the next seq, seen by both sides (an
    attachment is never an internal note); its `attachment.url` is a short-lived link
    that opens the file inline. A customer's file on a resolved conversation reopens it."""
    length = request.headers.get("content-length")
    form = StreamingForm(
        request.headers.get("content-type"),
        request.stream(),
        max_file_bytes=settings.SUPPORT_ATTACHMENT_MAX_BYTES,
    )
    message, created = await attachments.upload_attachment(
        session,
        caller,
        conversation_id,
        form,
        content_length=int(length) if length and length.isdigit() else None,
        storage=storage,
        settings=settings,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return message


@router.post(
    "/conversations/{conversation_id}/read", response_model=schemas.ReadCursor, responses=errors()
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
