"""An unverified account may sign in, read and edit its profile, but not write to an
organization or make Townsquare email someone else (403 `email_not_verified`)."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import API
from tests.factories import add_member, create_article, create_organization, create_user, sign_in
from townsquare.cms.enums import ArticleStatus
from townsquare.email.models import OutboxEmail
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Invitation, Organization


async def _refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "email_not_verified"


class TestUnverifiedAccount:
    async def test_reads_and_edits_its_profile(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session, verified=False)
        await sign_in(session, client, user)
        assert (await client.get(f"{API}/auth/me")).status_code == 200
        edited = await client.patch(f"{API}/auth/me", json={"display_name": "Still Me"})
        assert edited.status_code == 200

    async def test_cannot_create_an_organization(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session, verified=False)
        await sign_in(session, client, user)
        await _refused(await client.post(f"{API}/orgs", json={"name": "Unverified Co"}))
        assert (
            await session.scalar(
                select(func.count())
                .select_from(Organization)
                .where(Organization.name == "Unverified Co")
            )
            == 0
        )

    async def test_cannot_invite_or_publish_in_an_org_it_manages(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        user = await create_user(session, verified=False)
        org = await create_organization(session)
        await add_member(session, org, user, MemberRole.admin)
        article = await create_article(session, org)
        await sign_in(session, client, user)
        invited = await client.post(
            f"{API}/orgs/{org.slug}/invitations", json={"email": "friend@example.org"}
        )
        await _refused(invited)
        publish = f"{API}/orgs/{org.slug}/articles/{article.id}/publish"
        await _refused(await client.post(publish, json={"version": article.version}))
        assert (
            await session.scalar(
                select(func.count())
                .select_from(Invitation)
                .where(Invitation.organization_id == org.id)
            )
            == 0
        )
        assert (
            await session.scalar(
                select(func.count())
                .select_from(OutboxEmail)
                .where(OutboxEmail.to_address == "friend@example.org")
            )
            == 0
        )
        await session.refresh(article)
        assert article.status == ArticleStatus.draft
