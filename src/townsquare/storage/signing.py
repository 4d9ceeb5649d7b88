"""HMAC-signed, expiring URLs for the local backend's downloads and direct uploads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlencode

from townsquare.kit import clock


class UrlSigner:
    """Signs what a URL allows (method, key, expiry and its parameters) with a key derived
    from `SECRET_KEY`, so a link cannot be stretched to another object, method or time."""

    def __init__(self, secret_key: str) -> None:
        self._key = hmac.new(
            secret_key.encode(), b"townsquare-storage-url", hashlib.sha256
        ).digest()

    def _signature(self, method: str, key: str, params: Mapping[str, str]) -> str:
        # JSON, so that no value can pass for a separator and shift into another name.
        message = json.dumps([method, key, sorted(params.items())], separators=(",", ":"))
        digest = hmac.new(self._key, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def query(self, method: str, key: str, expires_at: datetime, **params: str) -> str:
        """The query string of a signed URL for `method` on `key` until `expires_at`."""
        signed = {**params, "expires": str(int(expires_at.timestamp()))}
        return urlencode({**signed, "signature": self._signature(method, key, signed)})

    def verify(self, method: str, key: str, query: Mapping[str, str]) -> dict[str, str] | None:
        """The signed parameters when the signature holds and has not expired, else None."""
        params = {k: v for k, v in query.items() if k != "signature"}
        signature = query.get("signature", "")
        expected = self._signature(method, key, params)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        try:
            expires = int(params["expires"])
        except (KeyError, ValueError):
            return None
        if expires < clock.now().timestamp():
            return None
        return params
