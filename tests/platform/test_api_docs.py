"""/api/docs works without the internet: Swagger UI's files come from Townsquare itself,
the page has no inline script, and every asset it names answers here."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.openapi_url: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if "data-openapi-url" in values:
            self.openapi_url = values["data-openapi-url"]
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1


async def test_docs_page_references_only_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    parsed = _Page()
    parsed.feed(page.text)
    assert len(parsed.urls) == 4
    for url in parsed.urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
    assert parsed.inline_scripts == 0
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert parsed.openapi_url == "/api/openapi.json"
    assert (await client.get(parsed.openapi_url)).status_code == 200


async def test_every_asset_answers_from_here(client: httpx.AsyncClient) -> None:
    parsed = _Page()
    parsed.feed((await client.get("/api/docs")).text)
    expected_types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for url in parsed.urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert asset.headers["content-type"].startswith(expected_types[suffix]), url
        assert "immutable" in asset.headers["cache-control"]
    bundle = next(url for url in parsed.urls if url.endswith("swagger-ui-bundle.js"))
    body = (await client.get(bundle)).text
    assert "SwaggerUIBundle" in body
    assert len(body) > 500_000  # the real distribution, not a stub


async def test_unknown_asset_is_404(client: httpx.AsyncClient) -> None:
    parsed = _Page()
    parsed.feed((await client.get("/api/docs")).text)
    base = parsed.urls[0].rsplit("/", 1)[0]
    response = await client.get(f"{base}/redoc.standalone.js")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
