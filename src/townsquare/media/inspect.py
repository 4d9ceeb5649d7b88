"""What a file really is: its type from its bytes, checked against what the client said,
images decoded, SVGs sanitized. Everything here is synchronous and CPU-bound; callers run
it in a worker thread."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import puremagic
import py_svg_hush
from PIL import Image

from townsquare.media.errors import (
    EmptyFile,
    ImageTooLarge,
    InvalidImage,
    UnsupportedFileType,
)

HEAD_BYTES = 8192

ALLOWED_TYPES: dict[str, frozenset[str]] = {
    "image/jpeg": frozenset({".jpg", ".jpeg", ".jpe", ".jfif"}),
    "image/png": frozenset({".png"}),
    "image/gif": frozenset({".gif"}),
    "image/webp": frozenset({".webp"}),
    "image/svg+xml": frozenset({".svg"}),
    "image/avif": frozenset({".avif"}),
    "application/pdf": frozenset({".pdf"}),
    "video/mp4": frozenset({".mp4", ".m4v"}),
    "video/webm": frozenset({".webm"}),
}
RASTER_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"})
INLINE_TYPES = RASTER_TYPES | {"application/pdf", "video/mp4", "video/webm"}
# Refused wherever they appear in a name (`invoice.php.png`): what a server or a desktop
# might execute or a browser might render as a page.
BLOCKED_EXTENSIONS = frozenset(
    {
        ".html", ".htm", ".xhtml", ".shtml", ".js", ".mjs", ".php", ".phtml", ".phar",
        ".asp", ".aspx", ".jsp", ".cgi", ".pl", ".py", ".rb", ".sh", ".bash", ".exe",
        ".dll", ".bat", ".cmd", ".com", ".msi", ".scr", ".vbs", ".ps1", ".jar", ".hta",
        ".svgz", ".xml", ".swf", ".apk", ".app", ".lnk",
    }
)  # fmt: skip
_XML_TYPES = frozenset({"application/xml", "text/xml", "image/svg+xml"})
_GENERIC_DECLARED = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_ORIENTATION = 0x0112
_QUARTER_TURNS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class Inspected:
    """What the bytes turned out to be."""

    content_type: str
    width: int | None = None
    height: int | None = None


def extension_of(filename: str) -> str:
    return os.path.splitext(filename)[1].lower()


def check_name_and_declared_type(filename: str, declared_type: str | None) -> None:
    """Refuse before reading any byte: a blocked or unknown extension, or a declared type
    outside the allowlist (415 `unsupported_file_type`)."""
    parts = filename.lower().split(".")[1:]
    if any(f".{part}" in BLOCKED_EXTENSIONS for part in parts):
        raise UnsupportedFileType("Files of this kind are never accepted.")
    extension = extension_of(filename)
    if not any(extension in extensions for extensions in ALLOWED_TYPES.values()):
        raise UnsupportedFileType()
    declared = _base_type(declared_type)
    if declared not in _GENERIC_DECLARED and declared not in ALLOWED_TYPES:
        raise UnsupportedFileType()


def detect_type(head: bytes, filename: str, declared_type: str | None) -> str:
    """The allowed type the first bytes show, which must agree with the extension and the
    declared type (a generic `application/octet-stream` declares nothing)."""
    if not head:
        raise EmptyFile()
    check_name_and_declared_type(filename, declared_type)
    detected = _sniff(head)
    if detected is None:
        raise UnsupportedFileType("The file's content is not one of the accepted types.")
    if extension_of(filename) not in ALLOWED_TYPES[detected]:
        raise UnsupportedFileType("The file's content does not match its extension.")
    declared = _base_type(declared_type)
    if declared not in _GENERIC_DECLARED and declared != detected:
        raise UnsupportedFileType("The file's content does not match its declared type.")
    return detected


def _sniff(head: bytes) -> str | None:
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        matches = []
    for match in matches:
        if match.mime_type in ALLOWED_TYPES:
            return str(match.mime_type)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    xml_like = not matches or matches[0].mime_type in _XML_TYPES
    if xml_like and text.startswith(b"<") and b"<svg" in text.lower():
        # An SVG behind an XML declaration, a comment or a doctype is seen as plain XML;
        # `sanitize_svg` then refuses anything whose root is not <svg>.
        return "image/svg+xml"
    return None


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def inspect_image(path: Path, content_type: str, max_pixels: int) -> Inspected:
    """Decode the whole image (a file that only starts like a PNG fails), refusing
    decompression bombs before any pixel is decoded."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge()
            image.load()
            if image.getexif().get(_ORIENTATION) in _QUARTER_TURNS:
                # Shown turned (as browsers and the variants do): report the size as shown.
                width, height = height, width
    except ImageTooLarge:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge() from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage() from exc
    return Inspected(content_type=content_type, width=width, height=height)


def sanitize_svg(data: bytes) -> bytes:
    """The SVG without scripts, event handlers, `javascript:`/`data:` URLs, entity
    declarations and references to anything outside the document."""
    try:
        cleaned = py_svg_hush.filter_svg(data)
    except Exception as exc:  # the filter reports malformed input with its own errors
        raise UnsupportedFileType("The file is not a well-formed SVG image.") from exc
    try:
        root = ET.fromstring(cleaned)  # noqa: S314 - svg-hush output has no DTD or entities
    except ET.ParseError as exc:
        raise UnsupportedFileType("The file is not a well-formed SVG image.") from exc
    if not root.tag.endswith("svg"):
        raise UnsupportedFileType("The file is not an SVG image.")
    for element in root.iter():
        for attribute in ("href", _XLINK_HREF):
            value = element.get(attribute)
            if value is not None and not value.startswith("#"):
                del element.attrib[attribute]
    ET.register_namespace("", "http://www.w3.org/2000/svg")
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    sanitized: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return sanitized
