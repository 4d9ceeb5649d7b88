"""The signed-in person's own views across organizations: `GET/PATCH /auth/me`.

It sits above auth and orgs, so that identity never imports the organizations domain.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth import schemas as auth_schemas
from townsquare.auth import service as auth_service
from townsquare.auth.deps import CurrentUser
from townsquare.auth.models import User
from townsquare.db import DbSession, TransactionalRoute
from townsquare.me.schemas import Me
from townsquare.orgs import service as orgs_service

router = APIRouter(route_class=TransactionalRoute)


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
