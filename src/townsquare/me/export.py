"""`GET /me/export`: everything Townsquare holds about the signed-in person, as JSON.

Only the person's own data: no secret (password, session or token hashes), no storage
keys, no internal notes, and nothing other people wrote except where it is about them
(audit entries, whose `email` values other than the person's own are left out).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from townsquare.auth import service as auth_service
from townsquare.auth.models import User, UserSession
from townsquare.cms.models import Article
from townsquare.config import Settings
from townsquare.events.models import Event, Shift, Signup
from townsquare.kit import clock
from townsquare.me import export_schemas as out
from townsquare.media.models import MediaItem
from townsquare.orgs.models import AuditLogEntry, Invitation, Membership, Organization
from townsquare.support.models import ChatMessage, Conversation


def _org(org: Organization) -> out.OrganizationRef:
    return out.OrganizationRef(id=org.id, slug=org.slug, name=org.name)


class _InAnOrganization(Protocol):
    id: ClassVar[InstrumentedAttribute[uuid.UUID]]
    organization_id: ClassVar[InstrumentedAttribute[uuid.UUID]]
    created_at: ClassVar[InstrumentedAttribute[datetime]]


_Row = TypeVar("_Row", bound=_InAnOrganization)


async def _with_org(
    session: AsyncSession, entity: type[_Row], *where: ColumnElement[bool]
) -> Sequence[tuple[_Row, Organization]]:
    """The rows of one kind that `where` picks, oldest first, each with its organization."""
    rows = await session.execute(
        select(entity, Organization)
        .join(Organization, Organization.id == entity.organization_id)
        .where(*where)
        .order_by(entity.created_at, entity.id)
    )
    return [(row, org) for row, org in rows]


async def build_export(
    session: AsyncSession, settings: Settings, user: User, *, current: UserSession
) -> out.AccountExport:
    return out.AccountExport(
        exported_at=clock.now(),
        profile=out.ExportedProfile(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            timezone=user.timezone,
            avatar_url=user.avatar_url,
            is_staff=user.is_staff,
            email_verified_at=user.email_verified_at,
            last_login_at=user.last_login_at,
            created_at=user.created_at,
            updated_at=user.updated_at,
        ),
        memberships=await _memberships(session, user),
        sessions=[
            out.ExportedSession(
                id=record.id,
                user_agent=record.user_agent,
                ip=record.ip,
                created_at=record.created_at,
                last_seen_at=record.last_seen_at,
                expires_at=record.expires_at,
                current=record.id == current.id,
            )
            for record in await auth_service.list_sessions(session, settings, user.id)
        ],
        articles=await _articles(session, user),
        conversations=await _conversations(session, user),
        messages=await _messages(session, user),
        media=await _media(session, user),
        signups=await _signups(session, user),
        invitations=await _invitations(session, user),
        audit_log=await _audit_entries(session, user),
    )


async def _memberships(session: AsyncSession, user: User) -> list[out.ExportedMembership]:
    rows = await _with_org(session, Membership, Membership.user_id == user.id)
    return [
        out.ExportedMembership(organization=_org(org), role=m.role.value, joined_at=m.created_at)
        for m, org in rows
    ]


async def _articles(session: AsyncSession, user: User) -> list[out.ExportedArticle]:
    rows = await _with_org(session, Article, Article.author_id == user.id)
    return [
        out.ExportedArticle(
            id=article.id,
            organization=_org(org),
            title=article.title,
            status=article.status.value,
            created_at=article.created_at,
            published_at=article.published_at,
        )
        for article, org in rows
    ]


async def _conversations(session: AsyncSession, user: User) -> list[out.ExportedConversation]:
    rows = await _with_org(session, Conversation, Conversation.customer_id == user.id)
    return [
        out.ExportedConversation(
            id=conversation.id,
            organization=_org(org),
            subject=conversation.subject,
            status=conversation.status.value,
            rating=conversation.rating,
            rating_comment=conversation.rating_comment,
            created_at=conversation.created_at,
            resolved_at=conversation.resolved_at,
        )
        for conversation, org in rows
    ]


async def _messages(session: AsyncSession, user: User) -> list[out.ExportedMessage]:
    rows = await _with_org(
        session, ChatMessage, ChatMessage.sender_id == user.id, ChatMessage.internal.is_(False)
    )
    return [
        out.ExportedMessage(
            id=message.id,
            conversation_id=message.conversation_id,
            organization=_org(org),
            type=message.type.value,
            body=message.body,
            attachment_filename=message.attachment_filename,
            created_at=message.created_at,
        )
        for message, org in rows
    ]


async def _media(session: AsyncSession, user: User) -> list[out.ExportedMedia]:
    rows = await _with_org(session, MediaItem, MediaItem.uploaded_by_id == user.id)
    return [
        out.ExportedMedia(
            id=item.id,
            organization=_org(org),
            filename=item.filename,
            content_type=item.content_type,
            size=item.size,
            width=item.width,
            height=item.height,
            alt=item.alt,
            title=item.title,
            status=item.status.value,
            created_at=item.created_at,
        )
        for item, org in rows
    ]


async def _signups(session: AsyncSession, user: User) -> list[out.ExportedSignup]:
    rows = await session.execute(
        select(Signup, Shift, Event, Organization)
        .join(Shift, Shift.id == Signup.shift_id)
        .join(Event, Event.id == Signup.event_id)
        .join(Organization, Organization.id == Signup.organization_id)
        .where(Signup.user_id == user.id)
        .order_by(Shift.starts_at, Signup.id)
    )
    return [
        out.ExportedSignup(
            id=signup.id,
            organization=_org(org),
            event_id=event.id,
            event_title=event.title,
            shift_id=shift.id,
            shift_title=shift.title,
            starts_at=shift.starts_at,
            ends_at=shift.ends_at,
            status=signup.status.value,
            created_at=signup.created_at,
        )
        for signup, shift, event, org in rows
    ]


async def _invitations(session: AsyncSession, user: User) -> list[out.ExportedInvitation]:
    now = clock.now()
    rows = await _with_org(session, Invitation, Invitation.email == user.email)
    return [
        out.ExportedInvitation(
            id=invitation.id,
            organization=_org(org),
            role=invitation.role.value,
            status=invitation.effective_status(now).value,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
        )
        for invitation, org in rows
    ]


async def _audit_entries(session: AsyncSession, user: User) -> list[out.ExportedAuditEntry]:
    rows = await _with_org(
        session,
        AuditLogEntry,
        or_(
            AuditLogEntry.actor_id == user.id,
            AuditLogEntry.data["user_id"].as_string() == str(user.id),
            AuditLogEntry.data["email"].as_string() == user.email,
        ),
    )
    return [
        out.ExportedAuditEntry(
            id=entry.id,
            organization=_org(org),
            action=entry.action,
            actor_id=entry.actor_id,
            target_type=entry.target_type,
            target_id=entry.target_id,
            data=_own_data(entry.data, user),
            created_at=entry.created_at,
        )
        for entry, org in rows
    ]


def _own_data(data: dict[str, Any], user: User) -> dict[str, Any]:
    """The entry's data without other people's addresses (an invitee's, say)."""
    return {
        key: value for key, value in data.items() if not (key == "email" and value != user.email)
    }
