"""What a file is, decided from its bytes; SVG sanitizing; filenames made safe to show and to
put in a header. Plain functions, no app."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.media import files
from townsquare.media import inspect
from townsquare.media.errors import EmptyFile, ImageTooLarge, InvalidImage, UnsupportedFileType
from townsquare.media.filenames import clean_filename, content_disposition
from townsquare.media.models import FILENAME_MAX


class TestDetectType:
    @pytest.mark.parametrize(
        ("data", "name", "declared", "expected"),
        [
            (files.png(4, 4), "a.png", "image/png", "image/png"),
            (files.png(4, 4), "A.PNG", "IMAGE/PNG; charset=binary", "image/png"),
            (files.image("JPEG"), "a.jfif", "image/jpeg", "image/jpeg"),
            (files.image("GIF"), "a.gif", None, "image/gif"),
            (files.image("WEBP"), "a.webp", "", "image/webp"),
            (files.image("AVIF"), "a.avif", "image/avif", "image/avif"),
            (files.pdf(), "a.pdf", "application/pdf", "application/pdf"),
            (files.mp4(2000), "a.m4v", "video/mp4", "video/mp4"),
            (files.webm(), "a.webm", "video/webm", "video/webm"),
            (
                b'<svg xmlns="http://www.w3.org/2000/svg"/>',
                "a.svg",
                "image/svg+xml",
                "image/svg+xml",
            ),
            (
                b'<?xml version="1.0"?>\n<!-- made by hand -->\n<svg xmlns="http://www.w3.org/2000/svg"/>',
                "a.svg",
                "image/svg+xml",
                "image/svg+xml",
            ),
        ],
    )
    def test_allowed(self, data: bytes, name: str, declared: str | None, expected: str) -> None:
        assert inspect.detect_type(data[: inspect.HEAD_BYTES], name, declared) == expected

    @pytest.mark.parametrize(
        ("data", "name", "declared"),
        [
            (files.HTML, "a.png", "image/png"),
            (files.HTML, "a.html", "text/html"),
            (files.SHELL_SCRIPT, "a.png", None),
            (files.png(4, 4), "a.jpg", "image/jpeg"),
            (files.png(4, 4), "a.png", "image/jpeg"),
            (files.png(4, 4), "a.php.png", "image/png"),
            (files.png(4, 4), "a.png", "image/x-png-but-not"),
            (files.image("TIFF"), "a.png", "image/png"),
            (files.image("BMP"), "a.png", "image/png"),
            (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "a.mp4", "video/mp4"),
            (b"PK\x03\x04" + b"\x00" * 60, "a.pdf", None),
            (b"random bytes that are nothing at all", "a.png", None),
        ],
    )
    def test_refused(self, data: bytes, name: str, declared: str | None) -> None:
        with pytest.raises(UnsupportedFileType):
            inspect.detect_type(data, name, declared)

    def test_empty(self) -> None:
        with pytest.raises(EmptyFile):
            inspect.detect_type(b"", "a.png", "image/png")

    @pytest.mark.parametrize(
        "name", ["x.html", "x.HTM", "x.php.png", "x.js.jpg", "x.exe", "x.svgz", "archive.jar.pdf"]
    )
    def test_blocked_names_before_any_byte(self, name: str) -> None:
        with pytest.raises(UnsupportedFileType):
            inspect.check_name_and_declared_type(name, None)


class TestImages:
    def test_decodes(self, tmp_path: Path) -> None:
        path = tmp_path / "a.png"
        path.write_bytes(files.png(30, 20))
        found = inspect.inspect_image(path, "image/png", 50_000_000)
        assert (found.width, found.height) == (30, 20)

    def test_bomb_refused_before_decoding(self, tmp_path: Path) -> None:
        path = tmp_path / "bomb.png"
        path.write_bytes(files.png_bomb())
        with pytest.raises(ImageTooLarge):
            inspect.inspect_image(path, "image/png", 50_000_000)

    def test_the_pixel_cap_is_a_setting(self, tmp_path: Path) -> None:
        path = tmp_path / "a.png"
        path.write_bytes(files.png(100, 100))
        with pytest.raises(ImageTooLarge):
            inspect.inspect_image(path, "image/png", 9_999)
        assert inspect.inspect_image(path, "image/png", 10_000).width == 100

    @pytest.mark.parametrize("make", [files.png_lookalike, files.truncated_png])
    def test_broken(self, tmp_path: Path, make: object) -> None:
        assert callable(make)
        path = tmp_path / "a.png"
        path.write_bytes(make())
        with pytest.raises(InvalidImage):
            inspect.inspect_image(path, "image/png", 50_000_000)


class TestSanitizeSvg:
    def test_hostile_parts_removed(self) -> None:
        clean = inspect.sanitize_svg(files.HOSTILE_SVG)
        root = ET.fromstring(clean)
        text = clean.decode().lower()
        for bad in ("script", "onload", "onclick", "javascript", "data:", "https://"):
            assert bad not in text
        assert root.tag == "{http://www.w3.org/2000/svg}svg"

    def test_idempotent(self) -> None:
        once = inspect.sanitize_svg(files.HOSTILE_SVG)
        assert inspect.sanitize_svg(once) == once

    def test_internal_references_stay(self) -> None:
        svg = (
            b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
            b'<defs><circle id="dot" r="2"/></defs><use xlink:href="#dot"/><use href="#dot"/></svg>'
        )
        clean = inspect.sanitize_svg(svg).decode()
        assert clean.count('href="#dot"') == 2

    @pytest.mark.parametrize(
        "svg",
        [
            b"<html><svg/></html>",
            b"not xml at all <svg",
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;'
            b'&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;">]><svg xmlns="http://www.w3.org/2000/svg">'
            b"<text>&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;</text></svg>",
        ],
    )
    def test_refused(self, svg: bytes) -> None:
        with pytest.raises(UnsupportedFileType):
            inspect.sanitize_svg(svg)

    def test_a_style_cannot_fetch(self) -> None:
        svg = (
            b'<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(https://evil.example/x.css);'
            b'</style><rect style="fill:url(https://evil.example/p)"/></svg>'
        )
        clean = inspect.sanitize_svg(svg)
        assert b"@import" not in clean
        assert b"url(http" not in clean


class TestFilenames:
    @pytest.mark.parametrize(
        ("raw", "clean"),
        [
            ("photo.png", "photo.png"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\me\\photo.png", "photo.png"),
            ("a\x00b\r\nc.png", "abc.png"),
            ('say "cheese".png', "say cheese.png"),
            ("\u202eevil\u200b.png", "evil.png"),
            ("...hidden.png", "hidden.png"),
            ("  spaced .png ", "spaced .png"),
            ("", "file"),
            (None, "file"),
            ("/", "file"),
            ("..", "file"),
        ],
    )
    def test_clean(self, raw: str | None, clean: str) -> None:
        assert clean_filename(raw) == clean

    def test_long_names_keep_their_extension(self) -> None:
        name = clean_filename("x" * 1000 + ".jpeg")
        assert len(name) == FILENAME_MAX
        assert name.endswith(".jpeg")

    @pytest.mark.parametrize(
        "raw",
        [
            "a\r\nSet-Cookie: x=y.png",
            'a"; filename="evil.html',
            "a;b=c.png",
            "\u00e9\u00e8\u00ea.pdf",
            "%0d%0a.png",
        ],
    )
    def test_disposition_cannot_break_out(self, raw: str) -> None:
        header = content_disposition(raw, inline=True)
        assert header.isascii()
        assert "\r" not in header
        assert "\n" not in header
        parsed = re.fullmatch(
            r"inline; filename=\"([^\"\\\\/]*)\"; filename\*=UTF-8''([A-Za-z0-9%._~-]*)", header
        )
        assert parsed is not None, header

    def test_attachment(self) -> None:
        assert content_disposition("logo.svg", inline=False) == (
            "attachment; filename=\"logo.svg\"; filename*=UTF-8''logo.svg"
        )
