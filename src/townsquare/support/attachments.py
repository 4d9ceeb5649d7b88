"""Files in a conversation: a participant's upload becomes an `attachment` message.

The file is checked by the media library's rules (its type comes from its bytes and must
agree with its extension and declared type; images are decoded in full, refused past the
pixel cap before decoding), but only images (JPEG, PNG, GIF, WebP, AVIF) and PDF are
accepted. It is stored beside its conversation (`orgs/{org}/conversations/{id}/{uuid}`),
not in the media library: it is bounded per file by `SUPPORT_ATTACHMENT_MAX_BYTES` and
does not count against the organization's media quota, which customers (who need not be
members) could otherwise fill. Attachments are always public to the conversation: no
internal note carries a file.

As in the media library, no transaction stays open while bytes travel: the conversation
is checked, the read transaction ends, the file streams to storage, and only then is the
conversation locked to give the message its seq (and checked again: it may have been
closed meanwhile). Whatever fails after the file is stored deletes it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.config import Settings
from townsquare.media import inspect
from townsquare.media.errors import FileTooLarge
from townsquare.media.filenames import clean_filename
from townsquare.media.multipart import FORM_OVERHEAD_BYTES, StreamingForm
from townsquare.media.uploads import discard, end_read_transaction, form_fields, store_checked
from townsquare.orgs.enums import Permission
from townsquare.orgs.errors import PermissionDenied
from townsquare.orgs.permissions import role_has
from townsquare.storage.base import Storage
from townsquare.storage.models import StorageDeletion
from townsquare.support import messages, schemas, views
from townsquare.support.access import get_visible
from townsquare.support.context import SupportCaller
from townsquare.support.enums import ChatParticipantRole, ConversationStatus
from townsquare.support.errors import AttachmentTypeNotAccepted, ConversationClosed
from townsquare.support.models import ChatMessage, Conversation
from townsquare.support.timeline import StoredAttachment

ATTACHMENT_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "application/pdf"}
)
ATTACHMENT_EXTENSIONS = frozenset().union(*(inspect.ALLOWED_TYPES[t] for t in ATTACHMENT_TYPES))
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def attachment_key(
    organization_id: uuid.UUID, conversation_id: uuid.UUID, attachment_id: uuid.UUID
) -> str:
    """Made here, never from the client's filename."""
    return f"orgs/{organization_id}/conversations/{conversation_id}/{attachment_id}"


def check_attachable(filename: str, declared_type: str | None) -> None:
    """Refuse before reading a byte what can never be an attachment (415): another
    extension, another declared type, or anything the media library refuses by name."""
    if inspect.extension_of(filename) not in ATTACHMENT_EXTENSIONS:
        raise AttachmentTypeNotAccepted()
    declared = (declared_type or "").split(";", 1)[0].strip().lower()
    if declared not in _GENERIC_TYPES and declared not in ATTACHMENT_TYPES:
        raise AttachmentTypeNotAccepted()
    inspect.check_name_and_declared_type(filename, declared_type)


def _check_may_attach(caller: SupportCaller, conversation: Conversation) -> None:
    """The customer may attach to their conversation; an agent needs `chat:attachments`."""
    if caller.role_in(conversation) == ChatParticipantRole.customer:
        return
    if caller.membership is None or not role_has(
        caller.membership.role, Permission.chat_attachments
    ):
        raise PermissionDenied()


async def upload_attachment(
    session: AsyncSession,
    caller: SupportCaller,
    conversation_id: uuid.UUID,
    form: StreamingForm,
    *,
    content_length: int | None,
    storage: Storage,
    settings: Settings,
) -> tuple[schemas.Message, bool]:
    """Stream the form's `file` to storage, check it, and post it as an `attachment`
    message (with the form's `body` as caption); returns it and whether it is new. A
    `client_msg_id` this sender used here answers the original and keeps no new file."""
    conversation = await get_visible(session, caller, conversation_id)
    _check_may_attach(caller, conversation)
    if conversation.status == ConversationStatus.closed:
        raise ConversationClosed()
    part = await form.open_file()
    filename = clean_filename(part.filename)
    check_attachable(filename, part.content_type)
    # The fields sent before the file are refused, or answer a retry, before any byte.
    early = form_fields(schemas.AttachmentFields, form.fields)
    if early.client_msg_id is not None:
        original = await messages.sent_with(session, conversation, caller, early.client_msg_id)
        if original is not None:
            [shown] = await views.present_messages(
                session, [original], storage=storage, settings=settings
            )
            return shown, False
    limit = settings.SUPPORT_ATTACHMENT_MAX_BYTES
    if content_length is not None and content_length > limit + FORM_OVERHEAD_BYTES:
        raise FileTooLarge()
    await end_read_transaction(session)
    key = attachment_key(caller.org.id, conversation.id, uuid.uuid4())
    checked = await store_checked(
        storage,
        key,
        form.file_chunks(),
        filename=filename,
        declared_type=part.content_type,
        max_bytes=limit,
        settings=settings,
    )
    try:
        if checked.content_type not in ATTACHMENT_TYPES:
            raise AttachmentTypeNotAccepted()
        fields = form_fields(schemas.AttachmentFields, await form.finish())
        locked = await get_visible(session, caller, conversation_id, for_update=True)
        shown, created = await messages.post(
            session,
            caller,
            locked,
            body=fields.body,
            client_msg_id=fields.client_msg_id,
            attachment=StoredAttachment(
                key=key,
                filename=filename,
                content_type=checked.content_type,
                size=checked.size,
                width=checked.width,
                height=checked.height,
            ),
            storage=storage,
            settings=settings,
        )
    except BaseException:
        await discard(storage, key)
        raise
    if not created:
        await discard(storage, key)
    return shown, created


async def forget_organization(session: AsyncSession, organization_id: uuid.UUID) -> int:
    """Queue the organization's attachment files for removal, in the caller's transaction
    (before the organization is deleted: its messages then go by cascade)."""
    keys = list(
        await session.scalars(
            select(ChatMessage.attachment_key).where(
                ChatMessage.organization_id == organization_id,
                ChatMessage.attachment_key.is_not(None),
            )
        )
    )
    session.add_all(StorageDeletion(storage_key=key) for key in keys if key is not None)
    await session.flush()
    return len(keys)
