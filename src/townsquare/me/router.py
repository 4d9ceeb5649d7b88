"""The signed-in person's own views across organizations: `GET/PATCH /auth/me`,
`GET /me/conversations`; with the account routes of `me.account` (deletion, export,
invitations) and `auth.account` (email change) included.

It sits above auth and orgs, so that identity never imports the organizations domain.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth import schemas as auth_schemas
from townsquare.auth import service as auth_service
from townsquare.auth.account import router as email_change_router
from townsquare.auth.deps import CurrentUser
from townsquare.auth.models import User
from townsquare.db import DbSession, TransactionalRoute
from townsquare.me.account import router as account_router
from townsquare.me.schemas import ConversationOrganization, Me, MyConversation, MyConversationPage
from townsquare.orgs import service as orgs_service
from townsquare.support import inbox as support_inbox
from townsquare.support import schemas as support_schemas

router = APIRouter(route_class=TransactionalRoute)
router.include_router(email_change_router)
router.include_router(account_router)


async def _me(session: AsyncSession, user: User) -> Me:
    organizations = await orgs_service.list_memberships_for_user(session, user)
    return Me(**auth_schemas.User.model_validate(user).model_dump(), organizations=organizations)


@router.get("/auth/me", response_model=Me, tags=["auth"])
async def get_me(user: CurrentUser, session: DbSession) -> Me:
    """The signed-in user and the organizations they belong to (name, slug, role, avatar)."""
    return await _me(session, user)


@router.patch("/auth/me", response_model=Me, tags=["auth"])
async def update_me(body: auth_schemas.ProfileUpdate, user: CurrentUser, session: DbSession) -> Me:
    """Change display name, time zone or avatar; any other field is refused (422), and
    `null` for display_name or timezone answers 422 naming the field."""
    await auth_service.update_profile(session, user, body.model_dump(exclude_unset=True))
    return await _me(session, user)


@router.get(
    "/me/conversations",
    response_model=MyConversationPage,
    tags=["support"],
    responses={
        400: {"description": "`invalid_cursor`"},
        401: {"description": "`not_authenticated`"},
    },
)
async def my_conversations(
    user: CurrentUser,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=support_schemas.MAX_CONVERSATIONS_PER_PAGE)] = (
        support_schemas.CONVERSATIONS_PER_PAGE
    ),
) -> MyConversationPage:
    """The support conversations the user opened, in every organization whose support is
    on, newest activity first, each with its organization and the user's `unread_count`."""
    rows, next_cursor = await support_inbox.list_for_user(session, user, cursor=cursor, limit=limit)
    items = [
        MyConversation(
            **conversation.model_dump(),
            organization=ConversationOrganization(id=org.id, slug=org.slug, name=org.name),
        )
        for conversation, org in rows
    ]
    return MyConversationPage(items=items, next_cursor=next_cursor)
