"""Multipart uploads on both backends: what is accepted, and QUALITY bar 14 — everything
refused is refused before anything is kept, and a client's filename never reaches a path or
a header."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.media import files
from tests.media.conftest import (
    KEY,
    Media,
    MediaFactory,
    assert_nothing_kept,
    download,
    problem,
)
from townsquare.media.models import MediaItem


class TestAccepted:
    async def test_png_with_alt_and_title(self, media: Media, session: AsyncSession) -> None:
        data = files.png(1200, 800)
        response = await media.upload(
            data, "Red square.png", "image/png", alt="A red square", title="Red"
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["filename"] == "Red square.png"
        assert (body["content_type"], body["size"]) == ("image/png", len(data))
        assert (body["width"], body["height"]) == (1200, 800)
        assert (body["alt"], body["title"], body["status"]) == ("A red square", "Red", "ready")
        assert body["variants"] == []
        got = await download(media, body["url"])
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-type"] == "image/png"
        assert got.headers["content-disposition"].startswith("inline;")
        item = await session.get(MediaItem, uuid.UUID(body["id"]))
        assert item is not None
        assert KEY.match(item.storage_key)
        assert await media.backend.objects() == [item.storage_key]

    @pytest.mark.parametrize(
        ("make", "name", "declared", "stored_type"),
        [
            (lambda: files.image("JPEG"), "photo.jpeg", "image/jpeg", "image/jpeg"),
            (lambda: files.image("JPEG"), "photo.JPG", "image/jpeg", "image/jpeg"),
            (lambda: files.image("GIF"), "anim.gif", "image/gif", "image/gif"),
            (lambda: files.image("WEBP"), "pic.webp", "image/webp", "image/webp"),
            (lambda: files.image("AVIF"), "pic.avif", "image/avif", "image/avif"),
            (files.pdf, "minutes.pdf", "application/pdf", "application/pdf"),
            (files.mp4, "clip.mp4", "video/mp4", "video/mp4"),
            (files.webm, "clip.webm", "video/webm", "video/webm"),
            (lambda: files.HOSTILE_SVG, "logo.svg", "image/svg+xml", "image/svg+xml"),
            (lambda: files.ILLUSTRATOR_SVG, "drawing.svg", "image/svg+xml", "image/svg+xml"),
            # A generic declared type declares nothing; the bytes and the name decide.
            (lambda: files.image("PNG"), "pic.png", "application/octet-stream", "image/png"),
            (lambda: files.image("PNG"), "pic.png", None, "image/png"),
        ],
    )
    async def test_every_allowed_type(
        self,
        media: Media,
        make: object,
        name: str,
        declared: str | None,
        stored_type: str,
    ) -> None:
        assert callable(make)
        data: bytes = make()
        body = await media.uploaded(data, name, declared) if declared else None
        if body is None:
            response = await media.upload(data, name, None)
            assert response.status_code == 201, response.text
            body = response.json()
        assert body["content_type"] == stored_type
        got = await download(media, body["url"])
        assert got.status_code == 200
        assert got.headers["content-type"] == stored_type
        if stored_type != "image/svg+xml":
            assert got.content == data


class TestRefusedByType:
    @pytest.mark.parametrize(
        ("data", "name", "declared"),
        [
            (files.HTML, "cute-cat.png", "image/png"),
            (files.HTML, "cute-cat.png", "application/octet-stream"),
            (files.SHELL_SCRIPT, "holiday.png", "image/png"),
            (b"<?php system($_GET['c']); ?>", "avatar.png", "image/png"),
            (b"PK\x03\x04" + b"\x00" * 64, "report.pdf", "application/pdf"),
        ],
    )
    async def test_a_page_or_script_renamed(
        self, media: Media, session: AsyncSession, data: bytes, name: str, declared: str
    ) -> None:
        problem(await media.upload(data, name, declared), 415, "unsupported_file_type")
        await assert_nothing_kept(media, session)

    @pytest.mark.parametrize(
        ("name", "declared"),
        [
            ("picture.png", "image/jpeg"),  # PNG bytes declared as JPEG
            ("picture.jpg", "image/png"),  # PNG bytes named .jpg
            ("picture.jpg", "image/jpeg"),  # both say JPEG, the bytes say PNG
            ("picture.gif", "application/octet-stream"),
            ("picture.png", "text/html"),
            ("picture", "image/png"),  # no extension
        ],
    )
    async def test_bytes_name_and_declared_type_must_agree(
        self, media: Media, session: AsyncSession, name: str, declared: str
    ) -> None:
        problem(await media.upload(files.png(40, 30), name, declared), 415, "unsupported_file_type")
        await assert_nothing_kept(media, session)

    @pytest.mark.parametrize(
        ("data", "name", "declared"),
        [
            (files.png(40, 30), "invoice.php.png", "image/png"),
            (files.png(40, 30), "x.PHP.png", "image/png"),
            (files.png(40, 30), "x.html.png", "image/png"),
            (files.HTML, "x.html", "text/html"),
            (files.HTML, "x.svgz", "image/svg+xml"),
            (files.png(40, 30), "setup.exe", "application/octet-stream"),
        ],
    )
    async def test_blocked_extensions(
        self, media: Media, session: AsyncSession, data: bytes, name: str, declared: str
    ) -> None:
        problem(await media.upload(data, name, declared), 415, "unsupported_file_type")
        await assert_nothing_kept(media, session)

    async def test_a_type_outside_the_allowlist(self, media: Media, session: AsyncSession) -> None:
        tiff = files.image("TIFF")
        problem(await media.upload(tiff, "scan.png", "image/png"), 415, "unsupported_file_type")
        await assert_nothing_kept(media, session)


class TestRefusedBySize:
    async def test_empty_file(self, media: Media, session: AsyncSession) -> None:
        problem(await media.upload(b"", "empty.png", "image/png"), 422, "empty_file")
        await assert_nothing_kept(media, session)

    async def test_limit_is_accepted_limit_plus_one_is_not(
        self, media_factory: MediaFactory, session: AsyncSession
    ) -> None:
        limit = 200 * 1024
        media = await media_factory(MEDIA_MAX_BYTES=limit)
        problem(
            await media.upload(files.mp4(limit + 1), "clip.mp4", "video/mp4"), 413, "file_too_large"
        )
        await assert_nothing_kept(media, session)
        body = await media.uploaded(files.mp4(limit), "clip.mp4", "video/mp4")
        assert body["size"] == limit

    async def test_limit_plus_one_streamed_without_a_length(
        self, media_factory: MediaFactory, session: AsyncSession
    ) -> None:
        # No Content-Length: only counting the bytes as they stream can refuse this one.
        limit = 10 * files.CHUNK + 123
        media = await media_factory(MEDIA_MAX_BYTES=limit)
        response = await media.client.post(
            media.base,
            content=files.streamed_multipart(limit + 1),
            headers={"Content-Type": files.CONTENT_TYPE},
        )
        problem(response, 413, "file_too_large")
        await assert_nothing_kept(media, session)

    async def test_bigger_than_allowed_by_its_length_is_refused_before_reading(
        self, media_factory: MediaFactory, session: AsyncSession
    ) -> None:
        limit = 100 * 1024
        media = await media_factory(MEDIA_MAX_BYTES=limit)
        big = files.multipart(files.mp4(limit * 3), "clip.mp4", "video/mp4")
        response = await media.client.post(
            media.base, content=big, headers={"Content-Type": files.CONTENT_TYPE}
        )
        problem(response, 413, "file_too_large")
        await assert_nothing_kept(media, session)


class TestRefusedImages:
    async def test_decompression_bomb(self, media: Media, session: AsyncSession) -> None:
        bomb = files.png_bomb()
        assert len(bomb) < 100 * 1024
        problem(await media.upload(bomb, "bomb.png", "image/png"), 422, "image_too_large")
        await assert_nothing_kept(media, session)

    @pytest.mark.parametrize("make", [files.png_lookalike, files.truncated_png])
    async def test_only_starts_like_a_png(
        self, media: Media, session: AsyncSession, make: object
    ) -> None:
        assert callable(make)
        problem(await media.upload(make(), "fake.png", "image/png"), 422, "invalid_image")
        await assert_nothing_kept(media, session)

    async def test_a_gif_header_in_front_of_a_page(
        self, media: Media, session: AsyncSession
    ) -> None:
        polyglot = b"GIF89a" + files.HTML
        problem(await media.upload(polyglot, "x.gif", "image/gif"), 422, "invalid_image")
        await assert_nothing_kept(media, session)


class TestSvg:
    async def test_stored_clean_and_served_as_an_attachment(self, media: Media) -> None:
        body = await media.uploaded(files.HOSTILE_SVG, "logo.svg", "image/svg+xml")
        got = await download(media, body["url"])
        assert got.status_code == 200
        assert got.headers["content-type"] == "image/svg+xml"
        assert got.headers["content-disposition"].startswith("attachment;")
        if media.backend.name == "local":
            assert got.headers["content-security-policy"] == "sandbox"
            assert got.headers["x-content-type-options"] == "nosniff"
        assert body["size"] == len(got.content)
        text = got.content.decode().lower()
        for bad in (
            "<script",
            "onload",
            "onclick",
            "javascript:",
            "data:",
            "evil.example",
            "alert",
        ):
            assert bad not in text, (bad, text)
        root = ET.fromstring(got.content)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        for element in root.iter():
            for name, value in element.attrib.items():
                assert not name.lower().startswith("on")
                if name.endswith("href"):
                    assert value.startswith("#")
        # What is harmless stays: the shapes.
        assert {e.tag.rsplit("}", 1)[-1] for e in root.iter()} >= {"svg", "rect", "circle"}

    async def test_entity_declarations_are_refused_or_dropped(self, media: Media) -> None:
        svg = (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg"><text>&xxe;</text></svg>'
        )
        response = await media.upload(svg, "x.svg", "image/svg+xml")
        if response.status_code == 201:
            got = await download(media, response.json()["url"])
            assert b"ENTITY" not in got.content
            assert b"root:" not in got.content
        else:
            problem(response, 415, "unsupported_file_type")

    async def test_a_page_that_mentions_svg_is_not_an_svg(
        self, media: Media, session: AsyncSession
    ) -> None:
        page = b"<html><body><svg></svg><script>alert(1)</script></body></html>"
        problem(await media.upload(page, "x.svg", "image/svg+xml"), 415, "unsupported_file_type")
        await assert_nothing_kept(media, session)

    async def test_larger_than_the_svg_limit(
        self, media_factory: MediaFactory, session: AsyncSession
    ) -> None:
        media = await media_factory(MEDIA_SVG_MAX_BYTES=1000)
        svg = b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<rect/>" * 200 + b"</svg>"
        problem(await media.upload(svg, "x.svg", "image/svg+xml"), 413, "file_too_large")
        await assert_nothing_kept(media, session)
