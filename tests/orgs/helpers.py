"""Helpers shared by the organization tests: problem answers, signed-in clients, contexts."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from tests.factories import add_member, create_organization, create_user, sign_in
from tests.orgs.conftest import NewClient, membership_of
from townsquare.auth.models import User
from townsquare.kit.pagination import PageParams
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Organization

API = "/api/v1"
SETTINGS = make_settings()
FIRST_PAGE = PageParams(page=1, per_page=20)


# --- over HTTP --------------------------------------------------------------------------


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def error_fields(response: httpx.Response) -> set[str]:
    body = problem(response, 422, "validation_error")
    return {error["field"] for error in body["errors"]}


async def signed_in(session: AsyncSession, new_client: NewClient, user: User) -> httpx.AsyncClient:
    client = await new_client()
    await sign_in(session, client, user)
    return client


async def fresh_org(session: AsyncSession, org: Organization) -> Organization | None:
    return await session.scalar(
        select(Organization)
        .where(Organization.id == org.id)
        .execution_options(populate_existing=True)
    )


# --- in the service layer ---------------------------------------------------------------


async def org_context(session: AsyncSession, org: Organization, user: User) -> OrgContext:
    """`user`'s context in `org`, as the org guard would build it."""
    return OrgContext(org=org, user=user, membership=await membership_of(session, org, user))


async def org_with(
    session: AsyncSession, *roles: MemberRole
) -> tuple[Organization, User, list[User]]:
    """An organization "Acme" with its owner and one new member per role in `roles`."""
    owner = await create_user(session, display_name="Owner")
    org = await create_organization(session, owner=owner, name="Acme")
    others = []
    for role in roles:
        user = await create_user(session, display_name=f"{role.value} user")
        await add_member(session, org, user, role)
        others.append(user)
    return org, owner, others
