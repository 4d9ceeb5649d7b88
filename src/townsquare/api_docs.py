"""The API documentation page, `/api/docs`: Swagger UI served by Townsquare itself.

Its script and stylesheet come from the pinned `fastapi-offline` package (which ships
Swagger UI's distribution files), so the page works on an instance without outside
access. The page has no inline script (its start-up is a file of ours), so it also works
under the strict Content-Security-Policy it is sent with. Asset URLs carry the package's
version, so browsers may keep them for good.
"""

from __future__ import annotations

from html import escape
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from townsquare.errors import NotFound

DOCS_PATH = "/api/docs"
OPENAPI_PATH = "/api/openapi.json"
SWAGGER_UI_PACKAGE = "fastapi-offline"
ASSETS_VERSION = version(SWAGGER_UI_PACKAGE)
ASSETS_PATH = f"{DOCS_PATH}/assets/{ASSETS_VERSION}"

_VENDOR = Path(str(files("fastapi_offline") / "static"))
_OURS = Path(str(files("townsquare") / "docs_assets"))
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_VENDOR / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (_VENDOR / "swagger-ui.css", "text/css"),
    "favicon.png": (_VENDOR / "favicon.png", "image/png"),
    "townsquare-docs.js": (_OURS / "townsquare-docs.js", "text/javascript"),
}
# Swagger UI sets styles from script and draws icons from data: URIs; nothing else
# is loaded from anywhere but here.
_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


class NoSuchAsset(NotFound):
    code = "not_found"
    detail = "No such documentation asset."


def docs_html(root_path: str, title: str) -> str:
    assets = f"{root_path}{ASSETS_PATH}"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}: API documentation</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{escape(root_path + OPENAPI_PATH)}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/townsquare-docs.js"></script>
</body>
</html>
"""


@router.get(DOCS_PATH)
async def docs_page(request: Request) -> HTMLResponse:
    return HTMLResponse(
        docs_html(request.scope.get("root_path", ""), request.app.title),
        headers={"Content-Security-Policy": _CONTENT_SECURITY_POLICY},
    )


@router.get(ASSETS_PATH + "/{name}")
async def docs_asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise NoSuchAsset()
    path, media_type = ASSETS[name]
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )
