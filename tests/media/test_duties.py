"""The media duties on both backends: image variants, uploads never completed, and the
objects of deleted items — also when the worker was down when they fell due."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.media import files
from tests.media.conftest import Media, complete, download, key_of, put_upload, reserve
from townsquare.media.duties import expire_uploads, make_variants
from townsquare.media.enums import VariantsStatus
from townsquare.media.models import MediaItem, MediaVariant
from townsquare.storage.base import Storage
from townsquare.storage.duties import delete_objects
from townsquare.storage.models import StorageDeletion


async def variants_of(media: Media, body: dict[str, Any]) -> list[dict[str, Any]]:
    detail = (await media.client.get(f"{media.base}/{body['id']}")).json()
    found: list[dict[str, Any]] = detail["variants"]
    return found


async def queued(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(StorageDeletion)) or 0)


class TestVariants:
    async def test_presets_narrower_than_the_original_webp_without_exif(
        self, media: Media, session: AsyncSession
    ) -> None:
        original = files.jpeg_with_gps(2000, 1200)
        assert Image.open(io.BytesIO(original)).getexif().get_ifd(files.GPS_IFD)
        body = await media.uploaded(original, "holiday.jpg", "image/jpeg")
        assert await variants_of(media, body) == []
        assert await make_variants(media.duty_context()) == 1
        variants = await variants_of(media, body)
        assert [(v["name"], v["width"], v["height"]) for v in variants] == [
            ("w320", 320, 192),
            ("w960", 960, 576),
            ("w1920", 1920, 1152),
        ]
        for variant in variants:
            got = await download(media, variant["url"])
            assert got.status_code == 200
            assert got.headers["content-type"] == "image/webp"
            assert got.headers["content-disposition"].startswith(
                f'inline; filename="holiday-{variant["name"]}.webp"'
            )
            assert len(got.content) == variant["size"]
            image = Image.open(io.BytesIO(got.content))
            assert image.format == "WEBP"
            assert image.size == (variant["width"], variant["height"])
            assert len(image.getexif()) == 0
            assert "exif" not in image.info
            assert "xmp" not in image.info
            assert "icc_profile" not in image.info
            assert b"Townsquare Test Camera" not in got.content
        # The original is kept as it was sent (its metadata is the uploader's business).
        assert (await download(media, body["url"])).content == original
        item = await session.get(MediaItem, uuid.UUID(body["id"]))
        assert item is not None
        await session.refresh(item)
        assert item.variants_status == VariantsStatus.done
        # Nothing more to do on the next sweep.
        assert await make_variants(media.duty_context()) == 0

    async def test_never_upscaled(self, media: Media) -> None:
        mid = await media.uploaded(files.png(1200, 800), "mid.png", "image/png")
        small = await media.uploaded(files.png(320, 200), "small.png", "image/png")
        assert await make_variants(media.duty_context()) == 2
        assert [v["name"] for v in await variants_of(media, mid)] == ["w320", "w960"]
        assert await variants_of(media, small) == []

    async def test_transparency_and_orientation(self, media: Media) -> None:
        out = io.BytesIO()
        Image.new("RGBA", (800, 400), (0, 0, 0, 0)).save(out, "PNG")
        body = await media.uploaded(out.getvalue(), "clear.png", "image/png")
        assert await make_variants(media.duty_context()) == 1
        [variant] = await variants_of(media, body)
        got = await download(media, variant["url"])
        image = Image.open(io.BytesIO(got.content))
        assert image.mode == "RGBA"
        assert image.getpixel((5, 5)) == (0, 0, 0, 0)

    async def test_an_image_shown_turned(self, media: Media) -> None:
        # A camera's portrait photo: stored 2000 x 1000 with "turn a quarter" in its EXIF.
        exif = Image.Exif()
        exif[0x0112] = 6
        out = io.BytesIO()
        Image.new("RGB", (2000, 1000), (9, 9, 9)).save(out, "JPEG", exif=exif)
        body = await media.uploaded(out.getvalue(), "portrait.jpg", "image/jpeg")
        assert (body["width"], body["height"]) == (1000, 2000)
        assert await make_variants(media.duty_context()) == 1
        assert [(v["name"], v["width"], v["height"]) for v in await variants_of(media, body)] == [
            ("w320", 320, 640),
            ("w960", 960, 1920),
        ]

    async def test_not_for_svg_pdf_or_video(self, media: Media, session: AsyncSession) -> None:
        await media.uploaded(files.HOSTILE_SVG, "a.svg", "image/svg+xml")
        await media.uploaded(files.pdf(), "a.pdf", "application/pdf")
        await media.uploaded(files.mp4(), "a.mp4", "video/mp4")
        assert await make_variants(media.duty_context()) == 0
        statuses = set(await session.scalars(select(MediaItem.variants_status)))
        assert statuses == {VariantsStatus.none}

    async def test_of_a_completed_direct_upload(self, media: Media) -> None:
        data = files.png(1000, 500)
        upload = await reserve(media, len(data))
        await put_upload(media, upload, data)
        body = (await complete(media, upload)).json()
        assert await make_variants(media.duty_context()) == 1
        assert [v["name"] for v in await variants_of(media, body)] == ["w320", "w960"]

    async def test_an_item_deleted_meanwhile(self, media: Media, session: AsyncSession) -> None:
        body = await media.uploaded(files.png(1000, 500), "a.png", "image/png")
        assert (await media.client.delete(f"{media.base}/{body['id']}")).status_code == 204
        assert await make_variants(media.duty_context()) == 0
        assert await session.scalar(select(func.count()).select_from(MediaVariant)) == 0

    async def test_variants_go_with_their_item(self, media: Media, session: AsyncSession) -> None:
        body = await media.uploaded(files.png(1200, 800), "a.png", "image/png")
        await make_variants(media.duty_context())
        assert len(await media.backend.objects()) == 3
        assert (await media.client.delete(f"{media.base}/{body['id']}")).status_code == 204
        assert await queued(session) == 3
        assert await delete_objects(media.duty_context()) == 3
        assert await media.backend.stored() == []

    async def test_a_failing_image_is_given_up_after_three_sweeps(
        self, media: Media, session: AsyncSession, clock: ModuleType
    ) -> None:
        body = await media.uploaded(files.png(1200, 800), "a.png", "image/png")
        item = await session.get(MediaItem, uuid.UUID(body["id"]))
        assert item is not None
        await media.backend.overwrite(item.storage_key, b"broken now", "image/png")
        for _ in range(3):
            assert await make_variants(media.duty_context()) == 0
            clock.travel(timedelta(minutes=6))  # past the lease
        await session.refresh(item)
        assert item.variants_status == VariantsStatus.failed
        assert await make_variants(media.duty_context()) == 0


class TestExpiredUploads:
    async def test_a_pending_upload_and_its_object(
        self, media: Media, session: AsyncSession, clock: ModuleType
    ) -> None:
        data = files.png(100, 100)
        upload = await reserve(media, len(data))
        assert (await put_upload(media, upload, data)).status_code == 200
        assert await expire_uploads(media.duty_context()) == 0  # not yet
        clock.travel(timedelta(seconds=media.settings.MEDIA_UPLOAD_TTL_SECONDS - 60))
        assert await expire_uploads(media.duty_context()) == 0
        assert await media.backend.objects() == [key_of(media, upload)]
        clock.travel(timedelta(seconds=61))
        assert await expire_uploads(media.duty_context()) == 1
        assert await session.get(MediaItem, uuid.UUID(upload["upload_id"])) is None
        assert await delete_objects(media.duty_context()) == 1
        assert await media.backend.stored() == []

    async def test_when_the_worker_was_down(
        self, media: Media, session: AsyncSession, clock: ModuleType
    ) -> None:
        # Three uploads fall due while no worker runs; the first sweep days later takes them
        # all, and the reserved quota is free again.
        uploads = []
        for n in range(3):
            data = files.png(50 + n, 50)
            upload = await reserve(media, len(data), f"p{n}.png")
            await put_upload(media, upload, data)
            uploads.append(upload)
        clock.travel(timedelta(days=3))
        assert await expire_uploads(media.duty_context()) == 3
        assert await delete_objects(media.duty_context()) == 3
        assert await media.backend.stored() == []
        assert await session.scalar(select(func.count()).select_from(MediaItem)) == 0

    async def test_a_late_put_after_complete_is_removed_when_the_url_expires(
        self, media: Media, clock: ModuleType
    ) -> None:
        data = files.png(100, 100)
        upload = await reserve(media, len(data))
        await put_upload(media, upload, data)
        body = (await complete(media, upload)).json()
        assert (await put_upload(media, upload, data)).status_code == 200  # a late second PUT
        assert len(await media.backend.objects()) == 2
        assert await delete_objects(media.duty_context()) == 0  # the URL still works
        clock.travel(timedelta(seconds=media.settings.MEDIA_UPLOAD_TTL_SECONDS + 1))
        assert await delete_objects(media.duty_context()) == 1
        [kept] = await media.backend.objects()
        assert f"/media/{body['id']}/original-" in kept
        fresh = (await media.client.get(f"{media.base}/{body['id']}")).json()
        assert (await download(media, fresh["url"])).content == data

    async def test_a_put_after_a_refused_complete_is_removed_too(
        self, media: Media, clock: ModuleType
    ) -> None:
        upload = await reserve(media, len(files.HTML))
        await put_upload(media, upload, files.HTML)
        assert (await complete(media, upload)).status_code == 415
        await put_upload(media, upload, files.HTML)
        assert await media.backend.objects() == [key_of(media, upload)]
        clock.travel(timedelta(seconds=media.settings.MEDIA_UPLOAD_TTL_SECONDS + 1))
        assert await delete_objects(media.duty_context()) == 1
        assert await media.backend.stored() == []


class TestDeletedObjects:
    async def test_when_the_worker_was_down(
        self, media: Media, session: AsyncSession, clock: ModuleType
    ) -> None:
        bodies = [
            await media.uploaded(files.png(20 + n, 20), f"p{n}.png", "image/png") for n in range(4)
        ]
        for body in bodies:
            assert (await media.client.delete(f"{media.base}/{body['id']}")).status_code == 204
        # Rows gone at once; the objects wait for a worker, however long it takes.
        assert len(await media.backend.objects()) == 4
        clock.travel(timedelta(days=2))
        assert await delete_objects(media.duty_context()) == 4
        assert await media.backend.stored() == []
        assert await queued(session) == 0

    async def test_a_crash_mid_sweep_deletes_on_the_next(
        self,
        media: Media,
        session: AsyncSession,
        monkeypatch: pytest.MonkeyPatch,
        clock: ModuleType,
    ) -> None:
        bodies = [
            await media.uploaded(files.png(20 + n, 20), f"p{n}.png", "image/png") for n in range(2)
        ]
        for body in bodies:
            await media.client.delete(f"{media.base}/{body['id']}")
        storage = media.storage
        real_delete = storage.delete
        calls = 0

        async def failing_once(key: str) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ConnectionError("the store went away")
            await real_delete(key)

        monkeypatch.setattr(storage, "delete", failing_once)
        assert await delete_objects(media.duty_context()) == 1
        assert await queued(session) == 1
        assert len(await media.backend.objects()) == 1
        monkeypatch.setattr(storage, "delete", real_delete)
        # The refused key waits a little, then goes.
        assert await delete_objects(media.duty_context()) == 0
        clock.travel(timedelta(minutes=6))
        assert await delete_objects(media.duty_context()) == 1
        assert await media.backend.stored() == []
        assert await queued(session) == 0

    async def test_deleting_what_is_already_gone(self, media: Media, session: AsyncSession) -> None:
        body = await media.uploaded(files.png(20, 20), "a.png", "image/png")
        await media.client.delete(f"{media.base}/{body['id']}")
        storage: Storage = media.storage
        for key in await media.backend.objects():
            await storage.delete(key)
        assert await delete_objects(media.duty_context()) == 1
        assert await queued(session) == 0
