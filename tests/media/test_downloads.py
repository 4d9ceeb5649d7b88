"""Downloads: headers that keep a browser from running anything, signed links that cannot be
stretched, and byte ranges for video players."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import ModuleType
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from tests.media import files
from tests.media.conftest import Media, download, problem
from townsquare.kit import clock as app_clock
from townsquare.storage.duties import delete_objects


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


class TestHeaders:
    @pytest.mark.parametrize(
        ("data", "name", "content_type", "inline"),
        [
            (files.png(40, 30), "a.png", "image/png", True),
            (files.image("JPEG"), "a.jpg", "image/jpeg", True),
            (files.pdf(), "a.pdf", "application/pdf", True),
            (files.mp4(), "a.mp4", "video/mp4", True),
            (files.webm(), "a.webm", "video/webm", True),
            (files.HOSTILE_SVG, "a.svg", "image/svg+xml", False),
        ],
    )
    async def test_type_disposition_nosniff_sandbox(
        self, media: Media, data: bytes, name: str, content_type: str, inline: bool
    ) -> None:
        body = await media.uploaded(data, name, content_type)
        got = await download(media, body["url"])
        assert got.status_code == 200
        assert got.headers["content-type"] == content_type
        disposition = got.headers["content-disposition"]
        assert disposition.startswith("inline;" if inline else "attachment;"), disposition
        if media.backend.name == "local":
            # S3 answers with its own headers; a CDN in front of it adds these.
            assert got.headers["x-content-type-options"] == "nosniff"
            if not inline:
                assert got.headers["content-security-policy"] == "sandbox"

    async def test_urls_live_at_most_fifteen_minutes(self, media: Media) -> None:
        body = await media.uploaded(files.png(40, 30), "a.png", "image/png")
        expires_at = datetime.fromisoformat(body["url_expires_at"])
        assert expires_at - app_clock.now() <= timedelta(minutes=15)
        assert media.settings.MEDIA_URL_TTL_SECONDS <= 900


class TestSignedLinks:
    """The local backend's links (S3 checks its own)."""

    async def test_expired(self, media: Media, clock: ModuleType) -> None:
        if media.backend.name != "local":
            return
        body = await media.uploaded(files.png(40, 30), "a.png", "image/png")
        clock.travel(timedelta(seconds=media.settings.MEDIA_URL_TTL_SECONDS + 1))
        problem(await download(media, body["url"]), 403, "invalid_signature")

    async def test_tampered(self, media: Media) -> None:
        if media.backend.name != "local":
            return
        first = await media.uploaded(files.png(40, 30), "a.png", "image/png")
        second = await media.uploaded(files.HOSTILE_SVG, "b.svg", "image/svg+xml")
        url = first["url"]
        far = str(int(app_clock.now().timestamp()) + 86400 * 365)
        tampered = [
            _with_query(url, expires=far),
            _with_query(url, content_type="text/html"),
            _with_query(url, disposition="inline"),
            _with_query(url, signature="A" * 43),
            _with_query(url, signature=""),
            url.split("?")[0],
            # A valid signature moved to another object of the same org.
            second["url"].split("?")[0] + "?" + urlsplit(url).query,
            # The SVG's own link made to answer inline, as HTML.
            _with_query(second["url"], content_type="text/html", disposition="inline"),
        ]
        for link in tampered:
            problem(await download(media, link), 403, "invalid_signature")
        assert (await download(media, url)).status_code == 200

    async def test_a_link_to_a_deleted_item(self, media: Media) -> None:
        if media.backend.name != "local":
            return
        body = await media.uploaded(files.png(40, 30), "a.png", "image/png")
        assert (await media.client.delete(f"{media.base}/{body['id']}")).status_code == 204
        # The row is gone at once; the object goes with the next sweep of the duty.
        assert await delete_objects(media.duty_context()) == 1
        problem(await download(media, body["url"]), 404, "object_not_found")

    async def test_keys_that_could_escape_the_folder(self, media: Media) -> None:
        if media.backend.name != "local":
            return
        for path in ("../../etc/passwd", "orgs/%2e%2e/%2e%2e/x", "..%2F..%2Fx", "a//b", "A/b"):
            response = await media.anonymous.get(f"/api/v1/storage/{path}?signature=x&expires=1")
            assert response.status_code in {403, 404}, (path, response.status_code)


class TestRange:
    SIZE = 300 * 1024

    async def _video(self, media: Media) -> tuple[bytes, str]:
        data = files.mp4(self.SIZE)
        body = await media.uploaded(data, "clip.mp4", "video/mp4")
        return data, body["url"]

    async def test_a_slice(self, media: Media) -> None:
        data, url = await self._video(media)
        got = await download(media, url, {"Range": "bytes=100000-199999"})
        assert got.status_code == 206
        assert got.headers["content-range"] == f"bytes 100000-199999/{self.SIZE}"
        assert got.headers["content-length"] == "100000"
        assert got.content == data[100000:200000]

    async def test_open_ended_and_suffix(self, media: Media) -> None:
        data, url = await self._video(media)
        got = await download(media, url, {"Range": "bytes=-100"})
        assert got.status_code == 206
        assert (
            got.headers["content-range"] == f"bytes {self.SIZE - 100}-{self.SIZE - 1}/{self.SIZE}"
        )
        assert got.content == data[-100:]
        got = await download(media, url, {"Range": f"bytes={self.SIZE - 10}-"})
        assert got.status_code == 206
        assert got.content == data[-10:]
        got = await download(media, url, {"Range": "bytes=0-0"})
        assert (got.status_code, got.content) == (206, data[:1])
        # An end past the last byte is cut to the last byte.
        got = await download(media, url, {"Range": f"bytes=10-{self.SIZE * 2}"})
        assert got.status_code == 206
        assert got.content == data[10:]

    async def test_out_of_range(self, media: Media) -> None:
        _, url = await self._video(media)
        got = await download(media, url, {"Range": f"bytes={self.SIZE}-"})
        assert got.status_code == 416
        if media.backend.name == "local":
            assert got.headers["content-range"] == f"bytes */{self.SIZE}"
            problem(got, 416, "range_not_satisfiable")

    async def test_whole_and_malformed(self, media: Media) -> None:
        if media.backend.name != "local":
            return
        data, url = await self._video(media)
        got = await download(media, url)
        assert got.status_code == 200
        assert got.headers["accept-ranges"] == "bytes"
        assert got.content == data
        for header in ("bytes=a-b", "items=0-1", "bytes=0-1,5-6", "bytes=-"):
            got = await download(media, url, {"Range": header})
            assert got.status_code == 200, header
            assert got.content == data
        got = await download(media, url, {"Range": "bytes=-0"})
        assert got.status_code == 416
        got = await download(media, url, {"Range": "bytes=9-3"})
        assert got.status_code == 416

    async def test_head(self, media: Media) -> None:
        if media.backend.name != "local":
            return
        _, url = await self._video(media)
        got = await media.anonymous.head(url, headers={"Range": "bytes=0-99"})
        assert got.status_code == 206
        assert got.headers["content-length"] == "100"
        assert got.content == b""
