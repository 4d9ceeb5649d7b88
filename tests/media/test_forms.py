"""Multipart uploads on both backends, continued: a client's filename never reaches a path
or a header (QUALITY bar 14), and forms that are malformed, oversized or anonymous."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.media import files
from tests.media.conftest import KEY, Media, MediaFactory, assert_nothing_kept, download, problem
from townsquare.media.models import MediaItem


class TestFilenames:
    """The stored name is for showing only; keys are made by the server."""

    @pytest.mark.parametrize(
        ("raw", "stored"),
        [
            (b"../../../etc/passwd.png", "passwd.png"),
            (b"..\\..\\windows\\win.ini.png", "win.ini.png"),
            (b"/absolute/path/pic.png", "pic.png"),
            (b"nul\x00byte.png", "nulbyte.png"),
            (b"..png", "png"),
            (b"tab\there.png", "tabhere.png"),
            ("r\u00e9sum\u00e9 \u202egnp.png".encode(), "r\u00e9sum\u00e9 gnp.png"),
        ],
    )
    async def test_stored_name_and_download_header(
        self, media: Media, session: AsyncSession, raw: bytes, stored: str
    ) -> None:
        body = files.multipart(files.png(40, 30), raw, "image/png")
        response = await media.client.post(
            media.base, content=body, headers={"Content-Type": files.CONTENT_TYPE}
        )
        if stored == "png":
            problem(response, 415, "unsupported_file_type")  # no extension left
            await assert_nothing_kept(media, session)
            return
        assert response.status_code == 201, response.text
        assert response.json()["filename"] == stored
        await self._assert_safe_download(media, response.json()["url"])
        [key] = await media.backend.objects()
        assert KEY.match(key)

    async def test_crlf_in_a_filename_never_reaches_a_header(self, media: Media) -> None:
        # A raw CR or LF cannot end a part's header line early; the percent-escaped form a
        # browser sends stays text.
        for raw in (b"a\rb.png", b"a\nSet-Cookie: x=y.png", b"evil%0D%0ASet-Cookie:%20x=y.png"):
            body = files.multipart(files.png(40, 30), raw, "image/png")
            response = await media.client.post(
                media.base, content=body, headers={"Content-Type": files.CONTENT_TYPE}
            )
            if response.status_code != 201:
                assert response.status_code in {415, 422}, response.text
                continue
            name = response.json()["filename"]
            assert "\r" not in name
            assert "\n" not in name
            got = await self._assert_safe_download(media, response.json()["url"])
            assert "set-cookie" not in {
                k.lower() for k in got.headers if k.lower() != "content-disposition"
            }

    async def test_direct_upload_names_with_control_characters_are_refused(
        self, media: Media, session: AsyncSession
    ) -> None:
        for name in ("a\r\nSet-Cookie: x=y.png", "nul\x00.png"):
            response = await media.client.post(
                f"{media.base}/uploads",
                json={"filename": name, "content_type": "image/png", "size": 10},
            )
            assert response.status_code == 422, response.text
        await assert_nothing_kept(media, session)

    async def test_unicode_name_has_an_ascii_fallback(self, media: Media) -> None:
        body = await media.uploaded(
            files.pdf(), "Protokoll \u00fcber \u201eKosten\u201c.pdf", "application/pdf"
        )
        got = await self._assert_safe_download(media, body["url"])
        disposition = got.headers["content-disposition"]
        assert disposition.startswith('inline; filename="Protokoll uber Kosten.pdf"')
        assert (
            "filename*=UTF-8''Protokoll%20%C3%BCber%20%E2%80%9EKosten%E2%80%9C.pdf" in disposition
        )

    @staticmethod
    async def _assert_safe_download(media: Media, url: str) -> httpx.Response:
        got = await download(media, url)
        assert got.status_code == 200
        disposition = got.headers["content-disposition"]
        assert disposition.isascii()
        assert not any(c in disposition for c in "\r\n\x00/\\")
        fallback = re.fullmatch(
            r"(inline|attachment); filename=\"([^\"]*)\"; filename\*=UTF-8''([A-Za-z0-9%._~-]*)",
            disposition,
        )
        assert fallback is not None, disposition
        return got


class TestForms:
    async def test_no_file_field(self, media: Media, session: AsyncSession) -> None:
        response = await media.client.post(
            media.base, data={"alt": "x"}, files={"other": ("a.png", b"x")}
        )
        problem(response, 422, "invalid_multipart")
        await assert_nothing_kept(media, session)

    async def test_not_a_form(self, media: Media) -> None:
        response = await media.client.post(media.base, json={"file": "x"})
        problem(response, 422, "invalid_multipart")

    async def test_text_fields_after_the_file(self, media: Media) -> None:
        data = files.png(40, 30)
        body = (
            files.multipart_head("a.png", "image/png")
            + data
            + f"\r\n--{files.BOUNDARY}\r\n".encode()
            + b'Content-Disposition: form-data; name="alt"\r\n\r\nlate alt'
            + files.MULTIPART_TAIL
        )
        response = await media.client.post(
            media.base, content=body, headers={"Content-Type": files.CONTENT_TYPE}
        )
        assert response.status_code == 201, response.text
        assert response.json()["alt"] == "late alt"

    @pytest.mark.parametrize("alt", ["line\nbreak", "nul\x00", "x" * 501])
    async def test_bad_alt_text_is_refused_and_nothing_kept(
        self, media: Media, session: AsyncSession, alt: str
    ) -> None:
        body = files.multipart(files.png(40, 30), "a.png", "image/png", fields={"alt": alt})
        response = await media.client.post(
            media.base, content=body, headers={"Content-Type": files.CONTENT_TYPE}
        )
        assert response.status_code == 422, response.text
        await assert_nothing_kept(media, session)

    async def test_a_huge_part_header_is_refused(self, media: Media, session: AsyncSession) -> None:
        header = b"X-Padding: " + b"a" * (1024 * 1024) + b"\r\n"
        head = files.multipart_head("a.png", "image/png").replace(
            b"Content-Type: image/png\r\n", b"Content-Type: image/png\r\n" + header
        )
        response = await media.client.post(
            media.base,
            content=head + files.png(40, 30) + files.MULTIPART_TAIL,
            headers={"Content-Type": files.CONTENT_TYPE},
        )
        assert response.status_code in {413, 422}, response.text
        await assert_nothing_kept(media, session)

    async def test_a_body_that_goes_on_after_the_form(
        self, media_factory: MediaFactory, session: AsyncSession
    ) -> None:
        media = await media_factory(MEDIA_MAX_BYTES=64 * 1024)

        async def endless() -> AsyncIterator[bytes]:
            yield files.multipart(files.png(40, 30), "a.png", "image/png")
            while True:
                yield b"x" * files.CHUNK

        response = await media.client.post(
            media.base, content=endless(), headers={"Content-Type": files.CONTENT_TYPE}
        )
        problem(response, 413, "payload_too_large")
        await assert_nothing_kept(media, session)

    async def test_anonymous_is_refused(self, media: Media) -> None:
        response = await media.anonymous.post(
            media.base, files={"file": ("a.png", files.png(4, 4), "image/png")}
        )
        assert response.status_code in {401, 403}
        assert await media.backend.stored() == []

    async def test_rows_point_at_their_objects(self, media: Media, session: AsyncSession) -> None:
        first = await media.uploaded(files.png(40, 30), "a.png", "image/png")
        second = await media.uploaded(files.png(40, 30), "a.png", "image/png")
        keys = set(await session.scalars(select(MediaItem.storage_key)))
        assert len(keys) == 2
        assert first["id"] != second["id"]
        assert set(await media.backend.objects()) == keys
