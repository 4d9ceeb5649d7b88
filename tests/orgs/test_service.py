"""Organizations and their modules in the service layer."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from tests.factories import add_member, create_organization, create_user
from tests.orgs.conftest import audit_actions, role_of
from tests.orgs.helpers import SETTINGS, org_context, org_with
from townsquare.db import Base
from townsquare.orgs import errors, invitations, service
from townsquare.orgs.deps import module_enabled
from townsquare.orgs.enums import MemberRole, Module
from townsquare.orgs.models import (
    AuditLogEntry,
    Invitation,
    Membership,
    Organization,
    OrganizationModule,
)


class TestCreateOrganization:
    async def test_creator_owns_it_with_default_modules_and_timezone(
        self, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        settings = make_settings(DEFAULT_MODULES=["events"], DEFAULT_TIMEZONE="Europe/Paris")

        org = await service.create_organization(
            session,
            user,
            name="Tenant One",
            slug=None,
            avatar_url=None,
            timezone=None,
            settings=settings,
        )

        assert org.slug == "tenant-one"
        assert org.timezone == "Europe/Paris"
        assert await service.get_modules(session, await org_context(session, org, user)) == [
            Module.events
        ]
        assert await role_of(session, org, user) == MemberRole.owner
        assert await audit_actions(session, org) == ["organization.created"]

    async def test_given_timezone_wins(self, session: AsyncSession) -> None:
        user = await create_user(session)
        org = await service.create_organization(
            session,
            user,
            name="Tokyo Club",
            slug=None,
            avatar_url=None,
            timezone="Asia/Tokyo",
            settings=SETTINGS,
        )
        assert org.timezone == "Asia/Tokyo"

    async def test_explicit_slug_taken_suggests_a_free_one(self, session: AsyncSession) -> None:
        user = await create_user(session)
        await create_organization(session, slug="acme")
        await create_organization(session, slug="acme-2")

        with pytest.raises(errors.SlugTaken) as caught:
            await service.create_organization(
                session,
                user,
                name="Acme",
                slug="acme",
                avatar_url=None,
                timezone=None,
                settings=SETTINGS,
            )

        assert caught.value.extra == {"suggestion": "acme-3"}

    async def test_slug_from_the_name_takes_a_suffix(self, session: AsyncSession) -> None:
        user = await create_user(session)
        await create_organization(session, slug="garden-club")

        org = await service.create_organization(
            session,
            user,
            name="Garden Club!",
            slug=None,
            avatar_url=None,
            timezone=None,
            settings=SETTINGS,
        )

        assert org.slug == "garden-club-2"


class TestOrganizationSlugs:
    async def test_long_slugs_stay_within_the_column(self, session: AsyncSession) -> None:
        base = "a" * 64
        await create_organization(session, slug=base)
        suggestion = await service.organization_slugs.free_slug(session, base)
        assert len(suggestion) <= 64
        assert suggestion.endswith("-2")


class TestUpdateOrganization:
    async def test_audits_what_changed(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        ctx = await org_context(session, org, owner)

        await service.update_organization(
            session, ctx, {"name": "Acme Ltd", "timezone": org.timezone, "avatar_url": None}
        )

        entry = await session.scalar(
            select(AuditLogEntry).where(
                AuditLogEntry.organization_id == org.id,
                AuditLogEntry.action == "organization.updated",
            )
        )
        assert entry is not None
        assert entry.data == {"changes": {"name": {"from": "Acme", "to": "Acme Ltd"}}}

    async def test_no_change_writes_no_entry(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        await service.update_organization(
            session, await org_context(session, org, owner), {"name": "Acme"}
        )
        assert "organization.updated" not in await audit_actions(session, org)

    async def test_slug_of_another_org(self, session: AsyncSession) -> None:
        await create_organization(session, slug="taken")
        org, owner, _ = await org_with(session)

        with pytest.raises(errors.SlugTaken) as caught:
            await service.update_organization(
                session, await org_context(session, org, owner), {"slug": "taken"}
            )

        assert caught.value.extra == {"suggestion": "taken-2"}


class TestListMembershipsForUser:
    async def test_names_slugs_roles_and_real_avatars(self, session: AsyncSession) -> None:
        user = await create_user(session)
        first = await create_organization(session, owner=user, name="Alpha")
        first.avatar_url = "https://cdn.example.com/alpha.png"
        second = await create_organization(session, name="Beta")
        await add_member(session, second, user, MemberRole.agent)
        await create_organization(session, name="Gamma")

        found = await service.list_memberships_for_user(session, user)

        assert [(o.name, o.slug, o.role, o.avatar_url) for o in found] == [
            ("Alpha", first.slug, MemberRole.owner, "https://cdn.example.com/alpha.png"),
            ("Beta", second.slug, MemberRole.agent, None),
        ]


class TestDeleteOrganization:
    async def test_everything_of_the_org_goes(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session, MemberRole.member)
        ctx = await org_context(session, org, owner)
        await invitations.create_invitation(
            session, ctx, email="x@example.com", role=MemberRole.member, settings=SETTINGS
        )
        survivor = await create_organization(session, owner=owner)

        await service.delete_organization(session, ctx)

        for model in (Membership, OrganizationModule, Invitation, AuditLogEntry):
            count = await session.scalar(
                select(func.count()).select_from(model).where(model.organization_id == org.id)
            )
            assert count == 0, model.__name__
        assert await session.get(Organization, org.id, populate_existing=True) is None
        assert await role_of(session, survivor, owner) == MemberRole.owner


class TestTenantTables:
    def test_every_reference_to_an_organization_cascades(self) -> None:
        """Deleting an organization removes its rows in every domain's tables."""
        references = [
            (table.name, fk.parent.name, fk.ondelete)
            for table in Base.metadata.sorted_tables
            for fk in table.foreign_keys
            if fk.column.table.name == "organizations"
        ]
        assert ("memberships", "organization_id", "CASCADE") in references
        assert [r for r in references if r[2] != "CASCADE"] == []


class TestSetModules:
    async def test_switches_modules_and_audits(self, session: AsyncSession) -> None:
        org, owner, _ = await org_with(session)
        ctx = await org_context(session, org, owner)

        result = await service.set_modules(session, ctx, [Module.support, Module.cms, Module.cms])

        assert result == [Module.cms, Module.support]
        assert not await module_enabled(session, org.id, Module.events)
        assert await module_enabled(session, org.id, Module.support)
        entry = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.action == "modules.updated")
        )
        assert entry is not None
        assert entry.data == {"enabled": [], "disabled": ["events"]}
