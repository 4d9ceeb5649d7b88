"""A multipart/form-data body read as it arrives: the `file` part's bytes are handed on
chunk by chunk (to storage), never collected in memory or on disk first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from townsquare.errors import PayloadTooLarge
from townsquare.media.errors import InvalidMultipart

FILE_FIELD = "file"
TEXT_FIELD_MAX_BYTES = 4096
MAX_PARTS = 10
FORM_OVERHEAD_BYTES = 256 * 1024
"""What a form may carry beside its file: boundaries, part headers (the parser allows
8 KiB each), text fields."""


def upload_openapi(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a route that reads a `StreamingForm`: the `file` part
    and the text `fields` (name → JSON schema)."""
    properties: dict[str, Any] = {FILE_FIELD: {"type": "string", "format": "binary"}}
    properties.update(fields)
    schema = {"type": "object", "required": [FILE_FIELD], "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    content_type: str | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    text: bytearray = field(default_factory=bytearray)


class StreamingForm:
    """Reads a form from `body` (the request's chunks). Await `open_file()` for the file
    part's name and type, iterate `file_chunks()`, then `finish()` for the text fields
    (which may come before or after the file)."""

    def __init__(
        self, content_type: str | None, body: AsyncIterator[bytes], *, max_file_bytes: int
    ) -> None:
        kind, options = parse_options_header(content_type or "")
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise InvalidMultipart()
        self._body = body
        # The whole body is limited as it is read (the file itself by storage, exactly).
        self._max_body_bytes = max_file_bytes + FORM_OVERHEAD_BYTES
        self._body_bytes = 0
        self._chunks: list[bytes] = []
        self._events: list[tuple[str, _Part]] = []
        self._part: _Part | None = None
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._parts = 0
        self._ended = False
        self._body_done = False
        self.fields: dict[str, str] = {}
        self.file: _Part | None = None
        self._file_done = False
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    # --- parser callbacks (synchronous, called from `write`) ---

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InvalidMultipart("The form has too many parts.")
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        assert self._part is not None
        self._part.headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        part = self._part
        assert part is not None
        _, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        part.filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")
        raw_type = part.headers.get(b"content-type")
        part.content_type = None if raw_type is None else raw_type.decode("latin-1").strip()
        if part.name == FILE_FIELD:
            if self.file is not None:
                raise InvalidMultipart("Send one file per upload.")
            self.file = part

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        assert part is not None
        if part is self.file:
            self._chunks.append(data[start:end])
            return
        part.text += data[start:end]
        if len(part.text) > TEXT_FIELD_MAX_BYTES:
            raise InvalidMultipart(f"The field `{part.name}` is too long.")

    def _on_part_end(self) -> None:
        part = self._part
        assert part is not None
        if part is self.file:
            self._file_done = True
        elif part.name:
            self.fields[part.name] = part.text.decode("utf-8", "replace")
        self._part = None

    def _on_end(self) -> None:
        self._ended = True

    # --- reading ---

    async def _feed(self) -> bool:
        """Parse the next chunk of the body; False once the body is exhausted."""
        if self._body_done:
            return False
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            self._body_done = True
            return False
        self._body_bytes += len(chunk)
        if self._body_bytes > self._max_body_bytes:
            raise PayloadTooLarge("The upload is larger than a file and its form may be.")
        if chunk:
            try:
                self._parser.write(chunk)
            except InvalidMultipart:
                raise
            except Exception as exc:  # the parser's own errors name nothing a client can use
                raise InvalidMultipart() from exc
        return True

    async def open_file(self) -> _Part:
        """Read up to the file part's headers; 422 when the form has no `file` part."""
        while self.file is None:
            if not await self._feed():
                raise InvalidMultipart()
        return self.file

    async def file_chunks(self) -> AsyncIterator[bytes]:
        await self.open_file()
        while True:
            while self._chunks:
                yield self._chunks.pop(0)
            if self._file_done:
                return
            if not await self._feed():
                raise InvalidMultipart("The upload ended before the file did.")

    async def finish(self) -> dict[str, str]:
        """Read the rest of the body and return the text fields."""
        while await self._feed():
            pass
        if not self._ended:
            raise InvalidMultipart("The upload ended before the form did.")
        return self.fields
