"""The library over HTTP on both backends: detail, editing, paging and filters, deleting,
and the tenancy rule (another organization's media id answers 404 and changes nothing)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_article, create_organization, create_user, sign_in
from tests.media import files
from tests.media.conftest import Media, download, problem, put_upload
from townsquare.cms.models import Article
from townsquare.media.duties import make_variants
from townsquare.media.models import MediaItem
from townsquare.media.service import upload_key
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Membership
from townsquare.storage.duties import delete_objects
from townsquare.storage.models import StorageDeletion


class TestDetail:
    async def test_get(self, media: Media) -> None:
        body = await media.uploaded(files.png(40, 30), "a.png", "image/png")
        got = await media.client.get(f"{media.base}/{body['id']}")
        assert got.status_code == 200
        detail = got.json()
        assert {k: v for k, v in detail.items() if k not in {"url", "url_expires_at"}} == {
            k: v for k, v in body.items() if k not in {"url", "url_expires_at"}
        }
        assert (await download(media, detail["url"])).content == files.png(40, 30)

    async def test_unknown(self, media: Media) -> None:
        problem(await media.client.get(f"{media.base}/{uuid.uuid4()}"), 404, "media_not_found")
        response = await media.client.get(f"{media.base}/not-a-uuid")
        assert response.status_code == 422

    async def test_anonymous(self, media: Media) -> None:
        body = await media.uploaded(files.png(40, 30), "a.png", "image/png")
        assert (await media.anonymous.get(f"{media.base}/{body['id']}")).status_code == 401
        assert (await media.anonymous.get(media.base)).status_code == 401


class TestEdit:
    async def test_alt_and_title(self, media: Media) -> None:
        body = await media.uploaded(files.png(40, 30), "a.png", "image/png")
        url = f"{media.base}/{body['id']}"
        response = await media.client.patch(url, json={"alt": "  A red square  "})
        assert response.status_code == 200, response.text
        assert (response.json()["alt"], response.json()["title"]) == ("A red square", "")
        response = await media.client.patch(url, json={"title": "Square"})
        assert (response.json()["alt"], response.json()["title"]) == ("A red square", "Square")
        response = await media.client.patch(url, json={"alt": ""})
        assert (response.json()["alt"], response.json()["title"]) == ("", "Square")
        assert (await media.client.get(url)).json()["title"] == "Square"

    @pytest.mark.parametrize("field", ["alt", "title"])
    async def test_null_names_the_field(self, media: Media, field: str) -> None:
        body = await media.uploaded(files.png(40, 30), "a.png", "image/png")
        response = await media.client.patch(f"{media.base}/{body['id']}", json={field: None})
        problem_body = problem(response, 422, "validation_error")
        assert [error["field"] for error in problem_body["errors"]] == [field]

    @pytest.mark.parametrize(
        "change",
        [
            {"alt": "x" * 501},
            {"title": "x" * 201},
            {"alt": "two\nlines"},
            {"title": "nul\x00"},
            {"filename": "evil.html"},
            {"content_type": "text/html"},
            {"size": 1},
            {"organization_id": str(uuid.uuid4())},
        ],
    )
    async def test_refused(
        self, media: Media, session: AsyncSession, change: dict[str, Any]
    ) -> None:
        body = await media.uploaded(files.png(40, 30), "a.png", "image/png")
        response = await media.client.patch(f"{media.base}/{body['id']}", json=change)
        assert response.status_code == 422, response.text
        item = await session.scalar(
            select(MediaItem)
            .where(MediaItem.id == uuid.UUID(body["id"]))
            .execution_options(populate_existing=True)
        )
        assert item is not None
        assert (item.alt, item.title, item.filename, item.size) == ("", "", "a.png", body["size"])


class TestListing:
    async def test_paging_newest_first(self, media: Media) -> None:
        ids = [
            (await media.uploaded(files.png(10 + n, 10), f"p{n}.png", "image/png"))["id"]
            for n in range(3)
        ]
        first = (await media.client.get(media.base, params={"per_page": 2})).json()
        assert first["total"] == 3
        assert [item["id"] for item in first["items"]] == ids[::-1][:2]
        second = (await media.client.get(media.base, params={"per_page": 2, "page": 2})).json()
        assert [item["id"] for item in second["items"]] == ids[::-1][2:]
        for item in first["items"] + second["items"]:
            assert item["url"]
            assert item["url_expires_at"]
        # Every URL in a page downloads its own file.
        for item in first["items"]:
            got = await download(media, item["url"])
            assert got.status_code == 200
            assert got.content == files.png(10 + ids.index(item["id"]), 10)

    async def test_kind_filter(self, media: Media) -> None:
        image = await media.uploaded(files.png(10, 10), "a.png", "image/png")
        svg = await media.uploaded(files.HOSTILE_SVG, "b.svg", "image/svg+xml")
        video = await media.uploaded(files.mp4(), "c.mp4", "video/mp4")
        pdf = await media.uploaded(files.pdf(), "d.pdf", "application/pdf")

        async def ids(kind: str) -> set[str]:
            response = await media.client.get(media.base, params={"kind": kind})
            assert response.status_code == 200
            return {item["id"] for item in response.json()["items"]}

        assert await ids("image") == {image["id"], svg["id"]}
        assert await ids("video") == {video["id"]}
        assert await ids("application") == {pdf["id"]}
        for bad in ("%", "image/", "text", "IMAGE"):
            response = await media.client.get(media.base, params={"kind": bad})
            assert response.status_code == 422, bad

    async def test_only_this_organizations(self, media: Media, session: AsyncSession) -> None:
        await media.uploaded(files.png(10, 10), "mine.png", "image/png")
        other = await _other_org_item(session)
        listed = (await media.client.get(media.base)).json()
        assert [item["filename"] for item in listed["items"]] == ["mine.png"]
        assert str(other.id) not in {item["id"] for item in listed["items"]}


async def _other_org_item(session: AsyncSession) -> MediaItem:
    owner = await create_user(session)
    org = await create_organization(session, owner=owner)
    item = MediaItem(
        organization_id=org.id,
        status="ready",
        storage_key=f"orgs/{org.id}/media/{uuid.uuid4()}/original",
        filename="theirs.png",
        content_type="image/png",
        size=10,
        alt="their alt",
        title="their title",
    )
    session.add(item)
    await session.flush()
    return item


class TestOtherOrganizations:
    async def test_their_ids_answer_404_and_change_nothing(
        self, media: Media, session: AsyncSession
    ) -> None:
        theirs = await _other_org_item(session)
        url = f"{media.base}/{theirs.id}"
        problem(await media.client.get(url), 404, "media_not_found")
        problem(await media.client.patch(url, json={"alt": "mine now"}), 404, "media_not_found")
        problem(await media.client.delete(url), 404, "media_not_found")
        response = await media.client.post(f"{media.base}/uploads/{theirs.id}/complete")
        problem(response, 404, "upload_not_found")
        fresh = await session.scalar(
            select(MediaItem)
            .where(MediaItem.id == theirs.id)
            .execution_options(populate_existing=True)
        )
        assert fresh is not None
        assert (fresh.alt, fresh.title) == ("their alt", "their title")
        assert await session.scalar(select(StorageDeletion.id)) is None

    async def test_a_member_of_another_org_cannot_reach_ours(
        self, media: Media, session: AsyncSession
    ) -> None:
        body = await media.uploaded(files.png(10, 10), "a.png", "image/png")
        outsider = await create_user(session)
        await create_organization(session, owner=outsider)
        transport = media.client._transport
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
            await sign_in(session, other, outsider)
            assert (await other.get(f"{media.base}/{body['id']}")).status_code == 404
            assert (await other.get(media.base)).status_code == 404
            response = await other.post(
                media.base, files={"file": ("x.png", files.png(4, 4), "image/png")}
            )
            assert response.status_code == 404


class TestDelete:
    async def test_row_at_once_objects_by_the_duty(
        self, media: Media, session: AsyncSession
    ) -> None:
        body = await media.uploaded(files.png(10, 10), "a.png", "image/png")
        assert len(await media.backend.objects()) == 1
        assert (await media.client.delete(f"{media.base}/{body['id']}")).status_code == 204
        problem(await media.client.get(f"{media.base}/{body['id']}"), 404, "media_not_found")
        assert (await media.client.get(media.base)).json()["total"] == 0
        queued = list(await session.scalars(select(StorageDeletion.storage_key)))
        assert len(queued) == 1
        assert queued[0].endswith("/original")
        problem(await media.client.delete(f"{media.base}/{body['id']}"), 404, "media_not_found")

    async def test_featured_by_an_article(self, media: Media, session: AsyncSession) -> None:
        body = await media.uploaded(files.png(10, 10), "a.png", "image/png")
        article = await create_article(session, media.org)
        await session.execute(
            update(Article)
            .where(Article.id == article.id)
            .values(featured_media_id=uuid.UUID(body["id"]))
        )
        await session.flush()
        response = await media.client.delete(f"{media.base}/{body['id']}")
        problem(response, 409, "media_in_use")
        assert (await media.client.get(f"{media.base}/{body['id']}")).status_code == 200
        assert await session.scalar(select(StorageDeletion.id)) is None
        await session.execute(
            update(Article).where(Article.id == article.id).values(featured_media_id=None)
        )
        await session.flush()
        assert (await media.client.delete(f"{media.base}/{body['id']}")).status_code == 204

    async def test_deleting_the_organization_deletes_its_objects(
        self, media: Media, session: AsyncSession
    ) -> None:
        await media.uploaded(files.png(1200, 800), "a.png", "image/png")
        await media.uploaded(files.pdf(), "b.pdf", "application/pdf")
        await make_variants(media.duty_context())
        small = files.png(2, 2)
        pending = await media.client.post(
            f"{media.base}/uploads",
            json={"filename": "c.png", "content_type": "image/png", "size": len(small)},
        )
        assert (await put_upload(media, pending.json(), small)).status_code == 200
        assert len(await media.backend.objects()) == 5  # 2 originals, 2 variants, 1 upload
        await session.execute(
            update(Membership)
            .where(Membership.user_id == media.editor.id)
            .values(role=MemberRole.owner)
        )
        await session.flush()
        response = await media.client.delete(f"/api/v1/orgs/{media.org.slug}")
        assert response.status_code == 204, response.text
        assert await session.scalar(select(func.count()).select_from(MediaItem)) == 0
        assert await delete_objects(media.duty_context()) == 4
        # What the pending upload's URL may still write goes once the URL has expired.
        assert await media.backend.objects() == [
            upload_key(media.org.id, uuid.UUID(pending.json()["upload_id"]))
        ]
