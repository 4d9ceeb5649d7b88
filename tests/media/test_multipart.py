"""The streaming form parser on its own: any split of the body into chunks gives the same
file and fields, and malformed or oversized forms are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from tests.media import files
from townsquare.errors import PayloadTooLarge
from townsquare.media.errors import InvalidMultipart
from townsquare.media.multipart import MAX_PARTS, TEXT_FIELD_MAX_BYTES, StreamingForm

LIMIT = 1024 * 1024


async def _chunks(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def _read(
    body: bytes, chunk: int = 65536
) -> tuple[str | None, str | None, bytes, dict[str, str]]:
    form = StreamingForm(files.CONTENT_TYPE, _chunks(_split(body, chunk)), max_file_bytes=LIMIT)
    part = await form.open_file()
    data = b"".join([c async for c in form.file_chunks()])
    fields = await form.finish()
    return part.filename, part.content_type, data, fields


def _field(name: str, value: bytes) -> bytes:
    return (
        f'--{files.BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
    )


class TestParsing:
    @pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1000, 65536])
    async def test_any_chunking(self, chunk: int) -> None:
        payload = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n" + b"\r\n"
        body = files.multipart(payload, "a b.png", "image/png", fields={"alt": "Alt", "title": "T"})
        assert await _read(body, chunk) == (
            "a b.png",
            "image/png",
            payload,
            {"alt": "Alt", "title": "T"},
        )

    async def test_fields_after_the_file(self) -> None:
        body = (
            files.multipart_head("a.png", "image/png")
            + b"data"
            + b"\r\n"
            + _field("alt", "\u00e9t\u00e9".encode())[:-2]
            + files.MULTIPART_TAIL
        )
        assert await _read(body) == ("a.png", "image/png", b"data", {"alt": "\u00e9t\u00e9"})

    async def test_no_type_and_no_name(self) -> None:
        body = (
            f'--{files.BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n\r\n'.encode()
            + b"abc"
            + files.MULTIPART_TAIL
        )
        assert await _read(body) == (None, None, b"abc", {})

    async def test_an_empty_file(self) -> None:
        assert (await _read(files.multipart(b"", "a.png", "image/png")))[2] == b""


class TestRefused:
    @pytest.mark.parametrize(
        "content_type",
        [None, "", "application/json", "multipart/form-data", "multipart/mixed; boundary=x"],
    )
    def test_not_a_form(self, content_type: str | None) -> None:
        with pytest.raises(InvalidMultipart):
            StreamingForm(content_type, _chunks([]), max_file_bytes=LIMIT)

    async def test_no_file_part(self) -> None:
        body = _field("alt", b"x") + f"--{files.BOUNDARY}--\r\n".encode()
        with pytest.raises(InvalidMultipart):
            await _read(body)

    async def test_two_files(self) -> None:
        body = (
            files.multipart_head("a.png", "image/png")
            + b"one\r\n"
            + files.multipart_head("b.png", "image/png")
            + b"two"
            + files.MULTIPART_TAIL
        )
        with pytest.raises(InvalidMultipart):
            await _read(body)

    async def test_too_many_parts(self) -> None:
        body = b"".join(_field(f"f{n}", b"x") for n in range(MAX_PARTS)) + files.multipart(
            b"x", "a.png", "image/png"
        )
        with pytest.raises(InvalidMultipart):
            await _read(body)

    async def test_a_long_text_field(self) -> None:
        body = _field("alt", b"x" * (TEXT_FIELD_MAX_BYTES + 1)) + files.multipart(
            b"x", "a.png", "image/png"
        )
        with pytest.raises(InvalidMultipart):
            await _read(body)

    async def test_body_ends_inside_the_file(self) -> None:
        body = files.multipart_head("a.png", "image/png") + b"half a file"
        with pytest.raises(InvalidMultipart):
            await _read(body)

    async def test_body_ends_before_the_form_does(self) -> None:
        body = files.multipart(b"data", "a.png", "image/png") + _field("alt", b"x")[:-10]
        body = body.replace(f"--{files.BOUNDARY}--".encode(), f"--{files.BOUNDARY}".encode())
        with pytest.raises(InvalidMultipart):
            await _read(body)

    async def test_garbage(self) -> None:
        with pytest.raises(InvalidMultipart):
            await _read(b"this is not a multipart body at all" * 10)

    async def test_a_body_longer_than_a_file_and_its_form(self) -> None:
        endless = files.multipart(b"x", "a.png", "image/png") + b"\0" * (LIMIT + 300 * 1024)
        with pytest.raises(PayloadTooLarge):
            await _read(endless)
