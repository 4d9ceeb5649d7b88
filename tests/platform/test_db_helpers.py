"""The shared database helpers: flush_or_conflict and SlugScope, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_organization, create_user
from townsquare.db import flush_or_conflict
from townsquare.db_slugs import SlugScope
from townsquare.errors import Conflict
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import SLUG_MAX, Membership, Organization


class Taken(Conflict):
    code = "slug_taken"


def _scope() -> SlugScope:
    return SlugScope(
        column=Organization.slug,
        constraint="uq_organizations_slug",
        max_length=SLUG_MAX,
        taken=lambda suggestion: Taken(extra={"suggestion": suggestion}),
    )


def _org(slug: str) -> Organization:
    return Organization(name="Org", slug=slug, timezone="UTC")


class TestFlushOrConflict:
    async def test_a_named_unique_violation_becomes_the_domain_error(
        self, session: AsyncSession
    ) -> None:
        org = await create_organization(session)
        with pytest.raises(Taken):
            await flush_or_conflict(session, {"uq_organizations_slug": Taken}, add=[_org(org.slug)])
        # The savepoint was rolled back: the session goes on working.
        await flush_or_conflict(session, {"uq_organizations_slug": Taken}, add=[_org("fresh-one")])

    async def test_an_unnamed_violation_is_not_swallowed(self, session: AsyncSession) -> None:
        org = await create_organization(session)
        with pytest.raises(IntegrityError):
            await flush_or_conflict(session, {"uq_something_else": Taken}, add=[_org(org.slug)])

    async def test_an_async_factory_may_query(self, session: AsyncSession) -> None:
        org = await create_organization(session)
        scope = _scope()
        with pytest.raises(Taken) as raised:
            await flush_or_conflict(
                session,
                {"uq_organizations_slug": lambda: scope.taken_error(session, org.slug)},
                add=[_org(org.slug)],
            )
        assert raised.value.extra["suggestion"] == f"{org.slug}-2"

    async def test_a_composite_unique_constraint_is_named(self, session: AsyncSession) -> None:
        org = await create_organization(session)
        user_id = (await create_user(session)).id
        session.add(Membership(organization_id=org.id, user_id=user_id, role=MemberRole.member))
        await session.flush()
        with pytest.raises(Taken):
            await flush_or_conflict(
                session,
                {"uq_memberships_organization_id_user_id": Taken},
                add=[Membership(organization_id=org.id, user_id=user_id, role=MemberRole.admin)],
            )


class TestSlugScope:
    async def test_generated_slugs_count_up(self, session: AsyncSession) -> None:
        base = f"team-{uuid.uuid4().hex[:6]}"
        made = [
            await _scope().insert(session, _org, explicit=None, source_text=base) for _ in range(3)
        ]
        assert [org.slug for org in made] == [base, f"{base}-2", f"{base}-3"]

    async def test_a_taken_explicit_slug_suggests_a_free_one(self, session: AsyncSession) -> None:
        org = await create_organization(session)
        session.add(_org(f"{org.slug}-2"))
        await session.flush()
        with pytest.raises(Taken) as raised:
            await _scope().insert(session, _org, explicit=org.slug, source_text="x")
        assert raised.value.extra["suggestion"] == f"{org.slug}-3"

    async def test_a_base_at_full_length_is_shortened_for_its_suffix(
        self, session: AsyncSession
    ) -> None:
        base = ("a" * (SLUG_MAX - 6)) + uuid.uuid4().hex[:6]
        first = await _scope().insert(session, _org, explicit=None, source_text=base)
        second = await _scope().insert(session, _org, explicit=None, source_text=base)
        third = await _scope().insert(session, _org, explicit=None, source_text=base)
        assert first.slug == base
        assert second.slug == base[: SLUG_MAX - 2] + "-2"
        assert third.slug == base[: SLUG_MAX - 2] + "-3"
        assert await _scope().free_slug(session, base) == base[: SLUG_MAX - 2] + "-4"

    async def test_changing_to_a_taken_slug_keeps_the_old_one(self, session: AsyncSession) -> None:
        mine, theirs = await create_organization(session), await create_organization(session)
        previous = mine.slug
        with pytest.raises(Taken) as raised:
            await _scope().change(session, mine, theirs.slug)
        assert mine.slug == previous
        assert raised.value.extra["suggestion"] == f"{theirs.slug}-2"
