"""CMS categories and tags over HTTP."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_category, create_organization, create_tag
from townsquare.orgs.models import Organization


def _url(org: Organization, rest: str) -> str:
    return f"/api/v1/orgs/{org.slug}/{rest}"


def _error_fields(response: httpx.Response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


class TestNullOnPatch:
    """`name` and `slug` cannot be cleared: `null` answers 422 naming the field and the row
    stays as it was (`updated_at` included)."""

    @pytest.mark.parametrize("field", ["name", "slug"])
    async def test_category(
        self, editor_client: httpx.AsyncClient, org: Organization, field: str
    ) -> None:
        created = await editor_client.post(_url(org, "categories"), json={"name": "News"})
        url = _url(org, f"categories/{created.json()['id']}")
        response = await editor_client.patch(url, json={field: None})
        assert response.status_code == 422, response.text
        assert _error_fields(response) == [field]
        assert (await editor_client.get(url)).json() == created.json()

    @pytest.mark.parametrize("field", ["name", "slug"])
    async def test_tag(
        self, editor_client: httpx.AsyncClient, org: Organization, field: str
    ) -> None:
        created = await editor_client.post(_url(org, "tags"), json={"name": "Events"})
        url = _url(org, f"tags/{created.json()['id']}")
        response = await editor_client.patch(url, json={field: None})
        assert response.status_code == 422, response.text
        assert _error_fields(response) == [field]
        assert (await editor_client.get(url)).json() == created.json()


class TestOtherOrgIds:
    async def test_another_orgs_category_and_tag_are_404(
        self, session: AsyncSession, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        other = await create_organization(session)
        category = await create_category(session, other, name="Theirs")
        tag = await create_tag(session, other, name="Theirs")
        for url in (_url(org, f"categories/{category.id}"), _url(org, f"tags/{tag.id}")):
            assert (await editor_client.patch(url, json={"name": "Mine"})).status_code == 404
            assert (await editor_client.delete(url)).status_code == 404
        await session.refresh(category)
        await session.refresh(tag)
        assert (category.name, tag.name) == ("Theirs", "Theirs")


class TestCategoriesAndTags:
    async def test_category_crud_cycle_and_in_use(
        self, editor_client: httpx.AsyncClient, org: Organization
    ) -> None:
        top = (await editor_client.post(_url(org, "categories"), json={"name": "Top"})).json()
        child = (
            await editor_client.post(
                _url(org, "categories"), json={"name": "Child", "parent_id": top["id"]}
            )
        ).json()
        assert (top["slug"], child["parent_id"]) == ("top", top["id"])
        cycle = await editor_client.patch(
            _url(org, f"categories/{top['id']}"), json={"parent_id": child["id"]}
        )
        assert cycle.status_code == 422
        assert cycle.json()["code"] == "category_cycle"
        in_use = await editor_client.delete(_url(org, f"categories/{top['id']}"))
        assert in_use.status_code == 409
        assert in_use.json()["code"] == "category_in_use"
        listed = (await editor_client.get(_url(org, "categories"))).json()
        assert [c["name"] for c in listed["items"]] == ["Child", "Top"]
        moved = await editor_client.patch(
            _url(org, f"categories/{child['id']}"), json={"parent_id": None}
        )
        assert moved.json()["parent_id"] is None
        assert (await editor_client.delete(_url(org, f"categories/{top['id']}"))).status_code == 204

    async def test_tag_crud(self, editor_client: httpx.AsyncClient, org: Organization) -> None:
        tag = (await editor_client.post(_url(org, "tags"), json={"name": "Volunteers"})).json()
        assert tag["slug"] == "volunteers"
        taken = await editor_client.post(
            _url(org, "tags"), json={"name": "V", "slug": "volunteers"}
        )
        assert taken.status_code == 409
        renamed = await editor_client.patch(_url(org, f"tags/{tag['id']}"), json={"name": "Crew"})
        assert (renamed.json()["name"], renamed.json()["slug"]) == ("Crew", "volunteers")
        assert (await editor_client.delete(_url(org, f"tags/{tag['id']}"))).status_code == 204
        assert (await editor_client.get(_url(org, "tags"))).json()["total"] == 0
