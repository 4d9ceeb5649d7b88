"""The console's static files. Vendored names carry their version, so they are cached
for a year and never revalidated; a new version is a new name."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
LONG_CACHE = "public, max-age=31536000, immutable"


class CachedStaticFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = LONG_CACHE
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response
