"""Direct uploads on both backends: reserve, PUT straight to storage, complete. Nothing the
client declared is trusted, and an object that fails the checks at `complete` is deleted
with its reservation."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from types import ModuleType

from sqlalchemy.ext.asyncio import AsyncSession

from tests.media import files
from tests.media.conftest import (
    Media,
    MediaFactory,
    complete,
    download,
    item_of,
    key_of,
    media_rows,
    problem,
    put_upload,
    reserve,
)
from townsquare.kit import clock as app_clock
from townsquare.media.enums import MediaStatus


class TestFlow:
    async def test_reserve_put_complete(self, media: Media, session: AsyncSession) -> None:
        data = files.png(1200, 800)
        upload = await reserve(media, len(data), alt="Alt text", title="A title")
        assert upload["method"] == "PUT"
        assert upload["fields"] == {}
        assert upload["headers"] == {"Content-Type": "image/png"}
        pending = upload["media"]
        assert (pending["status"], pending["url"], pending["url_expires_at"]) == (
            "pending",
            None,
            None,
        )
        assert pending["size"] == len(data)
        # Pending uploads are not in the library.
        listed = (await media.client.get(media.base)).json()
        assert listed["items"] == []
        put = await put_upload(media, upload, data)
        assert put.status_code == 200, put.text
        response = await complete(media, upload)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == upload["upload_id"]
        assert (body["status"], body["size"], body["width"], body["height"]) == (
            "ready",
            len(data),
            1200,
            800,
        )
        assert (body["alt"], body["title"]) == ("Alt text", "A title")
        got = await download(media, body["url"])
        assert got.status_code == 200
        assert got.content == data
        item = await item_of(session, upload)
        assert item is not None
        assert item.upload_expires_at is None

    async def test_declared_size_type_and_name_are_not_trusted(
        self, media: Media, session: AsyncSession
    ) -> None:
        data = files.image("JPEG", 300, 200)
        upload = await reserve(media, len(data) + 5000, "photo.jpg", "image/jpeg")
        assert (await put_upload(media, upload, data)).status_code == 200
        body = (await complete(media, upload)).json()
        assert (body["size"], body["content_type"]) == (len(data), "image/jpeg")
        assert (body["width"], body["height"]) == (300, 200)

    async def test_svg_is_sanitized_at_complete(self, media: Media) -> None:
        upload = await reserve(media, len(files.HOSTILE_SVG), "logo.svg", "image/svg+xml")
        assert (await put_upload(media, upload, files.HOSTILE_SVG)).status_code == 200
        response = await complete(media, upload)
        assert response.status_code == 200, response.text
        got = await download(media, response.json()["url"])
        assert got.status_code == 200
        assert response.json()["size"] == len(got.content)
        for bad in (b"<script", b"onload", b"javascript:", b"evil.example"):
            assert bad not in got.content
        assert got.headers["content-disposition"].startswith("attachment;")

    async def test_the_url_cannot_replace_a_completed_file(self, media: Media) -> None:
        data = files.png(300, 200)
        upload = await reserve(media, len(data))
        assert (await put_upload(media, upload, data)).status_code == 200
        body = (await complete(media, upload)).json()
        # The URL is still within its time; whatever the store answers to a second PUT,
        # the library's file stays the one that was checked.
        await put_upload(media, upload, files.HTML)
        got = await download(media, body["url"])
        assert got.content == data
        fresh = (await media.client.get(f"{media.base}/{body['id']}")).json()
        assert (await download(media, fresh["url"])).content == data


class TestRefusedAtComplete:
    async def test_object_swapped_for_html_before_complete(
        self, media: Media, session: AsyncSession
    ) -> None:
        data = files.png(200, 100)
        upload = await reserve(media, len(data))
        assert (await put_upload(media, upload, data)).status_code == 200
        # A second PUT to the same URL, of a page sent as an image.
        assert (await put_upload(media, upload, files.HTML)).status_code == 200
        problem(await complete(media, upload), 415, "unsupported_file_type")
        assert await media.backend.objects() == []
        assert await item_of(session, upload) is None
        problem(await complete(media, upload), 404, "upload_not_found")
        used = await media.client.get(media.base)
        assert used.json()["total"] == 0

    async def test_object_replaced_in_the_store_before_complete(
        self, media: Media, session: AsyncSession
    ) -> None:
        data = files.png(200, 100)
        upload = await reserve(media, len(data))
        assert (await put_upload(media, upload, data)).status_code == 200
        await media.backend.overwrite(key_of(media, upload), files.SHELL_SCRIPT, "image/png")
        problem(await complete(media, upload), 415, "unsupported_file_type")
        assert await media.backend.objects() == []
        assert await item_of(session, upload) is None

    async def test_html_put_with_an_image_type(self, media: Media, session: AsyncSession) -> None:
        upload = await reserve(media, len(files.HTML))
        put = await put_upload(media, upload, files.HTML)
        assert put.status_code == 200
        problem(await complete(media, upload), 415, "unsupported_file_type")
        assert await media.backend.objects() == []
        assert await media_rows(session, media.org) == 0

    async def test_bytes_of_another_type_than_reserved(
        self, media: Media, session: AsyncSession
    ) -> None:
        jpeg = files.image("JPEG")
        upload = await reserve(media, len(jpeg), "photo.png", "image/png")
        assert (await put_upload(media, upload, jpeg)).status_code == 200
        problem(await complete(media, upload), 415, "unsupported_file_type")
        assert await media.backend.objects() == []
        assert await media_rows(session, media.org) == 0

    async def test_decompression_bomb(self, media: Media, session: AsyncSession) -> None:
        bomb = files.png_bomb()
        upload = await reserve(media, len(bomb), "bomb.png")
        assert (await put_upload(media, upload, bomb)).status_code == 200
        problem(await complete(media, upload), 422, "image_too_large")
        assert await media.backend.objects() == []
        assert await media_rows(session, media.org) == 0

    async def test_only_starts_like_a_png(self, media: Media, session: AsyncSession) -> None:
        fake = files.png_lookalike()
        upload = await reserve(media, len(fake))
        assert (await put_upload(media, upload, fake)).status_code == 200
        problem(await complete(media, upload), 422, "invalid_image")
        assert await media.backend.objects() == []
        assert await media_rows(session, media.org) == 0

    async def test_larger_than_the_limit(
        self, media_factory: MediaFactory, session: AsyncSession
    ) -> None:
        media = await media_factory(MEDIA_MAX_BYTES=100 * 1024)
        small = files.mp4(50 * 1024)
        upload = await reserve(media, len(small), "clip.mp4", "video/mp4")
        item = await item_of(session, upload)
        assert item is not None
        # Whatever the URL allowed, what is stored at `complete` is what counts.
        await media.backend.overwrite(key_of(media, upload), files.mp4(100 * 1024 + 1), "video/mp4")
        problem(await complete(media, upload), 413, "file_too_large")
        assert await media.backend.objects() == []
        assert await media_rows(session, media.org) == 0

    async def test_empty(self, media: Media, session: AsyncSession) -> None:
        upload = await reserve(media, 10)
        item = await item_of(session, upload)
        assert item is not None
        await media.backend.overwrite(key_of(media, upload), b"", "image/png")
        problem(await complete(media, upload), 422, "empty_file")
        assert await media.backend.objects() == []
        assert await media_rows(session, media.org) == 0


class TestCompleteStates:
    async def test_nothing_put_yet(self, media: Media, session: AsyncSession) -> None:
        upload = await reserve(media, 100)
        problem(await complete(media, upload), 409, "upload_incomplete")
        item = await item_of(session, upload)
        assert item is not None
        assert item.status == MediaStatus.pending  # still reserved: PUT, then complete

    async def test_completing_twice(self, media: Media) -> None:
        data = files.png(20, 20)
        upload = await reserve(media, len(data))
        await put_upload(media, upload, data)
        assert (await complete(media, upload)).status_code == 200
        problem(await complete(media, upload), 404, "upload_not_found")

    async def test_expired(self, media: Media, clock: ModuleType) -> None:
        data = files.png(20, 20)
        upload = await reserve(media, len(data))
        await put_upload(media, upload, data)
        clock.travel(timedelta(seconds=media.settings.MEDIA_UPLOAD_TTL_SECONDS + 1))
        problem(await complete(media, upload), 404, "upload_not_found")

    async def test_unknown_upload(self, media: Media) -> None:
        response = await media.client.post(f"{media.base}/uploads/{uuid.uuid4()}/complete")
        problem(response, 404, "upload_not_found")


class TestReserve:
    async def test_refused_before_reserving(self, media: Media, session: AsyncSession) -> None:
        for filename, content_type, code in (
            ("x.php.png", "image/png", "unsupported_file_type"),
            ("x.html", "text/html", "unsupported_file_type"),
            ("x.png", "text/html", "unsupported_file_type"),
            ("x.exe", "application/octet-stream", "unsupported_file_type"),
        ):
            response = await media.client.post(
                f"{media.base}/uploads",
                json={"filename": filename, "content_type": content_type, "size": 10},
            )
            problem(response, 415, code)
        response = await media.client.post(
            f"{media.base}/uploads",
            json={"filename": "x.png", "content_type": "image/png", "size": 0},
        )
        assert response.status_code == 422
        response = await media.client.post(
            f"{media.base}/uploads",
            json={
                "filename": "x.png",
                "content_type": "image/png",
                "size": media.settings.MEDIA_MAX_BYTES + 1,
            },
        )
        problem(response, 413, "file_too_large")
        assert await media_rows(session, media.org) == 0

    async def test_a_client_filename_is_cleaned(self, media: Media, session: AsyncSession) -> None:
        upload = await reserve(media, 10, "../../etc/passwd.png")
        assert upload["media"]["filename"] == "passwd.png"
        item = await item_of(session, upload)
        assert item is not None
        assert "passwd" not in item.storage_key
        assert "passwd" not in upload["url"]

    async def test_url_expires_with_the_reservation(self, media: Media) -> None:
        before = app_clock.now()
        upload = await reserve(media, 10)
        delta = datetime.fromisoformat(upload["expires_at"]) - before
        ttl = timedelta(seconds=media.settings.MEDIA_UPLOAD_TTL_SECONDS)
        assert timedelta(0) < delta <= ttl + timedelta(seconds=5)


class TestLocalUploadUrl:
    """The local backend's own upload URL (S3 checks its signatures itself)."""

    async def test_more_bytes_than_reserved(
        self, media_factory: MediaFactory, session: AsyncSession
    ) -> None:
        media = await media_factory()
        if media.backend.name != "local":
            return
        upload = await reserve(media, 1000, "clip.mp4", "video/mp4")
        problem(await put_upload(media, upload, files.mp4(1001)), 413, "file_too_large")
        assert await media.backend.stored() == []

    async def test_another_content_type(self, media: Media) -> None:
        if media.backend.name != "local":
            return
        data = files.png(20, 20)
        upload = await reserve(media, len(data))
        response = await put_upload(media, upload, data, {"Content-Type": "text/html"})
        problem(response, 403, "invalid_signature")
        assert await media.backend.stored() == []

    async def test_tampered_or_expired(self, media: Media, clock: ModuleType) -> None:
        if media.backend.name != "local":
            return
        data = files.png(20, 20)
        upload = await reserve(media, len(data))
        for tampered in (
            upload["url"].replace("max_bytes=", "max_bytes=9"),
            upload["url"].replace("/upload?", "/original?"),
            upload["url"][:-3],
        ):
            assert tampered != upload["url"]
            response = await put_upload(media, {**upload, "url": tampered}, data)
            problem(response, 403, "invalid_signature")
        clock.travel(timedelta(seconds=media.settings.MEDIA_UPLOAD_TTL_SECONDS + 1))
        problem(await put_upload(media, upload, data), 403, "invalid_signature")
        assert await media.backend.stored() == []

    async def test_the_download_signature_does_not_upload(self, media: Media) -> None:
        if media.backend.name != "local":
            return
        body = await media.uploaded(files.png(20, 20), "a.png", "image/png")
        response = await media.anonymous.put(
            body["url"], content=files.HTML, headers={"Content-Type": "image/png"}
        )
        problem(response, 403, "invalid_signature")
        got = await download(media, body["url"])
        assert got.content == files.png(20, 20)
