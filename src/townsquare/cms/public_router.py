"""The public site's read API: published articles only, no authentication.

An org that does not exist or has the `cms` module off answers 404. Drafts, scheduled
and archived articles never appear. Bodies are built by `cms.public` straight from
Core rows; the response models below document the shapes in the OpenAPI.

These are the API's hot path, so `add_public_routes` registers them flat on the app's own
route list, ahead of the included routers: FastAPI re-walks an included router's tree on
every request (its routes-version check visits every route of the app, twice per level),
while a route on the app's list matches with one regular expression.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Path, Query, Request, Response

from townsquare.cms import public
from townsquare.cms.schemas import PublicArticle, PublicArticlePage
from townsquare.errors import NotFound
from townsquare.kit import clock
from townsquare.kit.pagination import InvalidCursor
from townsquare.kit.slugs import SLUG_PATTERN
from townsquare.routing import LeanRoute

PUBLIC_PREFIX = "/public/orgs/{org}"
TAGS: list[str | Enum] = ["public"]
OrgSlug = Annotated[
    str, Path(max_length=64, pattern=r"^[^\x00-\x1f]+$", description="The organization's slug.")
]
ArticleSlug = Annotated[str, Path(max_length=200, pattern=SLUG_PATTERN)]
JSON_MEDIA_TYPE = "application/json"
ATOM_MEDIA_TYPE = "application/atom+xml"
ATOM_NS = "http://www.w3.org/2005/Atom"
ET.register_namespace("", ATOM_NS)


class PublicNotFound(NotFound):
    detail = "No such published article or organization."


def _json(value: object) -> Response:
    return Response(content=public.dumps(value), media_type=JSON_MEDIA_TYPE)


async def list_public_articles(
    request: Request,
    org: OrgSlug,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=public.MAX_LIMIT)] = public.DEFAULT_LIMIT,
    category: Annotated[
        str | None, Query(max_length=100, pattern=SLUG_PATTERN, description="Category slug")
    ] = None,
    tag: Annotated[
        str | None, Query(max_length=64, pattern=SLUG_PATTERN, description="Tag slug")
    ] = None,
) -> Response:
    """Published articles, newest first, by cursor (`next_cursor` until it is null)."""
    async with public.reader(request) as db:
        try:
            page = await public.list_articles(
                db, org, limit=limit, cursor=cursor, category=category, tag=tag
            )
        except public.BadCursor as exc:
            raise InvalidCursor() from exc
    if page is None:
        raise PublicNotFound()
    return _json(page)


async def get_public_article(request: Request, org: OrgSlug, slug: ArticleSlug) -> Response:
    """One published article with its sanitized HTML body."""
    async with public.reader(request) as db:
        article = await public.get_article(db, org, slug)
    if article is None:
        raise PublicNotFound()
    return _json(article)


async def public_feed(request: Request, org: OrgSlug) -> Response:
    """The newest published articles as an Atom feed."""
    async with public.reader(request) as db:
        found = await public.org_is_public(db, org)
        if found is None:
            raise PublicNotFound()
        rows = await public.feed_entries(db, org)
    base = request.app.state.settings.PUBLIC_URL.rstrip("/")
    feed_url = f"{base}/api/v1/public/orgs/{org}/feed.xml"
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _text(feed, "id", feed_url)
    _text(feed, "title", found[1])
    updated = max((r["updated_at"] for r in rows), default=clock.now())
    _text(feed, "updated", public.iso(updated))
    ET.SubElement(feed, f"{{{ATOM_NS}}}link", rel="self", href=feed_url)
    for row in rows:
        url = f"{base}/api/v1/public/orgs/{org}/articles/{row['slug']}"
        entry = ET.SubElement(feed, f"{{{ATOM_NS}}}entry")
        _text(entry, "id", f"urn:uuid:{row['id']}")
        _text(entry, "title", row["title"])
        ET.SubElement(entry, f"{{{ATOM_NS}}}link", rel="alternate", href=url)
        _text(entry, "published", public.iso(row["published_at"]))
        _text(entry, "updated", public.iso(row["updated_at"]))
        if row["author_name"] is not None:
            author = ET.SubElement(entry, f"{{{ATOM_NS}}}author")
            _text(author, "name", row["author_name"])
        if row["category_slug"] is not None:
            ET.SubElement(
                entry,
                f"{{{ATOM_NS}}}category",
                term=row["category_slug"],
                label=row["category_name"],
            )
        if row["excerpt"]:
            _text(entry, "summary", row["excerpt"])
        content = _text(entry, "content", row["body"])
        content.set("type", "html")
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return Response(content=body, media_type=ATOM_MEDIA_TYPE)


def add_public_routes(router: APIRouter, prefix: str) -> None:
    """Register the public reads on `router` (the app's own) under `prefix`, flat and
    first.

    As `LeanRoute`s (`townsquare.routing`): the endpoints take only path and query
    parameters and answer their own `Response`; they open no request session (they read
    through `public.reader`), so `TransactionalRoute`'s commit has nothing to do."""
    base = prefix + PUBLIC_PREFIX
    before = len(router.routes)
    not_public: dict[int | str, dict[str, Any]] = {
        404: {"description": "Unknown organization or its CMS is off"}
    }
    router.add_api_route(
        base + "/articles",
        list_public_articles,
        methods=["GET"],
        tags=TAGS,
        response_model=PublicArticlePage,
        responses=not_public,
        route_class_override=LeanRoute,
    )
    router.add_api_route(
        base + "/articles/{slug}",
        get_public_article,
        methods=["GET"],
        tags=TAGS,
        response_model=PublicArticle,
        responses={404: {"description": "No such published article"}},
        route_class_override=LeanRoute,
    )
    router.add_api_route(
        base + "/feed.xml",
        public_feed,
        methods=["GET"],
        tags=TAGS,
        response_class=Response,
        responses={
            200: {"content": {ATOM_MEDIA_TYPE: {}}, "description": "An Atom feed"},
            **not_public,
        },
        route_class_override=LeanRoute,
    )
    # Ahead of every route already there (FastAPI's own docs routes too): a public read
    # then matches on its first or second check.
    added = router.routes[before:]
    del router.routes[before:]
    router.routes[:0] = added


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}")
    element.text = _NOT_XML.sub("", text)
    return element
