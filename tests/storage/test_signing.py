"""The local backend's signed URLs, and the byte ranges its downloads serve."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl

import pytest

from townsquare.kit import clock
from townsquare.storage.base import ByteRange
from townsquare.storage.errors import RangeNotSatisfiable
from townsquare.storage.router import download_headers, parse_range
from townsquare.storage.signing import UrlSigner


def _params(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=True))


class TestUrlSigner:
    def test_round_trip(self) -> None:
        signer = UrlSigner("secret")
        query = signer.query("GET", "a/b", clock.now() + timedelta(minutes=5), content_type="x/y")
        params = signer.verify("GET", "a/b", _params(query))
        assert params is not None
        assert params["content_type"] == "x/y"

    def test_bound_to_method_key_secret_and_parameters(self) -> None:
        signer = UrlSigner("secret")
        expires_at = clock.now() + timedelta(minutes=5)
        query = _params(signer.query("GET", "a/b", expires_at, content_type="x/y"))
        assert signer.verify("PUT", "a/b", query) is None
        assert signer.verify("GET", "a/c", query) is None
        assert UrlSigner("other").verify("GET", "a/b", query) is None
        assert signer.verify("GET", "a/b", {**query, "content_type": "text/html"}) is None
        assert signer.verify("GET", "a/b", {**query, "extra": "1"}) is None
        assert (
            signer.verify("GET", "a/b", {**query, "expires": str(int(query["expires"]) + 1)})
            is None
        )
        without = {k: v for k, v in query.items() if k != "signature"}
        assert signer.verify("GET", "a/b", without) is None

    def test_expires(self) -> None:
        signer = UrlSigner("secret")
        query = _params(signer.query("GET", "a/b", clock.now() + timedelta(seconds=30)))
        assert signer.verify("GET", "a/b", query) is not None
        clock.travel(timedelta(seconds=31))
        try:
            assert signer.verify("GET", "a/b", query) is None
        finally:
            clock.reset()

    def test_parameters_cannot_be_shifted_between_names(self) -> None:
        # `a="x\nb=y"` and `a="x", b="y"` must not sign the same.
        signer = UrlSigner("secret")
        expires_at = clock.now() + timedelta(minutes=5)
        query = _params(signer.query("GET", "k", expires_at, a="x\nb=y"))
        forged = {k: v for k, v in query.items() if k != "a"} | {"a": "x", "b": "y"}
        assert signer.verify("GET", "k", forged) is None

    @pytest.mark.parametrize("expires", ["", "soon", "1e10", "-1"])
    def test_malformed_expiry(self, expires: str) -> None:
        signer = UrlSigner("secret")
        query = _params(signer.query("GET", "k", clock.now() + timedelta(minutes=5)))
        assert signer.verify("GET", "k", {**query, "expires": expires}) is None


class TestParseRange:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            (None, None),
            ("", None),
            ("bytes=0-99", ByteRange(0, 99)),
            ("bytes=100-", ByteRange(100, 999)),
            ("bytes=-100", ByteRange(900, 999)),
            ("bytes=-5000", ByteRange(0, 999)),
            ("bytes=990-5000", ByteRange(990, 999)),
            ("bytes=999-999", ByteRange(999, 999)),
            (" bytes=1-2 ", ByteRange(1, 2)),
            ("bytes=0-1,4-5", None),
            ("items=0-1", None),
            ("bytes=a-b", None),
            ("bytes=-", None),
        ],
    )
    def test_served(self, header: str | None, expected: ByteRange | None) -> None:
        assert parse_range(header, 1000) == expected

    @pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=9-3"])
    def test_not_satisfiable(self, header: str) -> None:
        with pytest.raises(RangeNotSatisfiable) as raised:
            parse_range(header, 1000)
        assert raised.value.headers == {"Content-Range": "bytes */1000"}

    def test_an_empty_object(self) -> None:
        with pytest.raises(RangeNotSatisfiable):
            parse_range("bytes=0-0", 0)
        assert parse_range(None, 0) is None


class TestDownloadHeaders:
    def test_inline_image(self) -> None:
        headers = download_headers("image/png", 'inline; filename="a.png"')
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" not in headers

    @pytest.mark.parametrize(
        ("content_type", "disposition"),
        [("image/svg+xml", 'inline; filename="a.svg"'), ("application/pdf", "attachment")],
    )
    def test_sandboxed(self, content_type: str, disposition: str) -> None:
        headers = download_headers(content_type, disposition)
        assert headers["Content-Security-Policy"] == "sandbox"
        assert headers["X-Content-Type-Options"] == "nosniff"
