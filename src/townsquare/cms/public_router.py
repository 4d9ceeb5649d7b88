"""The public site's read API: published articles only, no authentication.

An org that does not exist or has the `cms` module off answers 404 (its public profile
answers whatever modules it has on). Drafts, scheduled and archived articles never appear.
Bodies are built by `cms.public` straight from Core rows; the response models below
document the shapes in the OpenAPI. Every answer is cacheable (`cms.public_cache`).

These are the API's hot path, so `add_public_routes` registers them flat on the app's own
route list, ahead of the included routers: FastAPI re-walks an included router's tree on
every request (its routes-version check visits every route of the app, twice per level),
while a route on the app's list matches with one regular expression.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from townsquare.cms import public, public_cache
from townsquare.cms.schemas import PublicArticle, PublicArticlePage
from townsquare.errors import NotFound
from townsquare.kit.pagination import InvalidCursor
from townsquare.kit.slugs import SLUG_PATTERN
from townsquare.orgs.enums import Module
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


class PublicOrgNotFound(NotFound):
    detail = "No such organization."


class PublicOrganization(BaseModel):
    """An organization's public profile."""

    name: str
    slug: str
    avatar_url: str | None
    timezone: str
    modules: list[Module] = Field(description="The modules the organization has on.")


CategoryFilter = Annotated[
    str | None,
    Query(
        max_length=100,
        pattern=SLUG_PATTERN,
        description="Category slug: the articles of that category and of its subcategories.",
    ),
]
TagFilter = Annotated[
    str | None, Query(max_length=64, pattern=SLUG_PATTERN, description="Tag slug")
]


async def list_public_articles(
    request: Request,
    org: OrgSlug,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=public.MAX_LIMIT)] = public.DEFAULT_LIMIT,
    category: CategoryFilter = None,
    tag: TagFilter = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern=r"^[^\x00-\x1f]+$",
            description="Search words in titles, excerpts and bodies: articles with all of "
            'them, best match first (PostgreSQL also reads `"a phrase"`, `or` and `-word`).',
        ),
    ] = None,
) -> Response:
    """Published articles, newest first (best match first with `q`), by cursor
    (`next_cursor` until it is null). Filters combine."""
    found = public_cache.conditions(request)
    async with public.reader(request) as db:
        try:
            listed = await public.list_articles(
                db, org, limit=limit, cursor=cursor, category=category, tag=tag, q=q
            )
        except public.BadCursor as exc:
            raise InvalidCursor() from exc
    if listed is None:
        raise PublicNotFound()
    page, last_modified = listed
    return public_cache.respond(
        request, public.dumps(page), JSON_MEDIA_TYPE, last_modified=last_modified, found=found
    )


async def get_public_article(request: Request, org: OrgSlug, slug: ArticleSlug) -> Response:
    """One published article with its sanitized HTML body. A slug the article had before
    answers 301 to its current one."""
    found = public_cache.conditions(request)
    async with public.reader(request) as db:
        exists = True
        if found is not None:
            # A revalidation: the validators come without the body, which a 304 skips.
            current = await public.article_validators(db, org, slug)
            if current is not None and found.not_modified(current.etag, current.last_modified):
                return public_cache.not_modified(request, current.etag, current.last_modified)
            exists = current is not None
        article = await public.get_article(db, org, slug) if exists else None
        if article is None:
            moved_to = await public.redirect_slug(db, org, slug)
    if article is None:
        if moved_to is None:
            raise PublicNotFound()
        path: str = request.scope["path"]
        return Response(
            status_code=301,
            headers={
                "location": f"{path.rsplit('/', 1)[0]}/{moved_to}",
                **public_cache.headers(request, None, None),
            },
        )
    item, validators = article
    return public_cache.respond(
        request,
        public.dumps(item),
        JSON_MEDIA_TYPE,
        etag=validators.etag,
        last_modified=validators.last_modified,
    )


async def get_public_org(request: Request, org: OrgSlug) -> Response:
    """An organization's public profile: name, avatar, time zone, modules on."""
    found = public_cache.conditions(request)
    async with public.reader(request) as db:
        profile = await public.org_profile(db, org)
    if profile is None:
        raise PublicOrgNotFound()
    body, last_modified = profile
    return public_cache.respond(
        request, public.dumps(body), JSON_MEDIA_TYPE, last_modified=last_modified, found=found
    )


async def public_feed(
    request: Request, org: OrgSlug, category: CategoryFilter = None, tag: TagFilter = None
) -> Response:
    """The newest published articles as an Atom feed (of a category with its
    subcategories, or of a tag, when asked). Entries link to the article's page on the
    public site (`PUBLIC_ARTICLE_URL`)."""
    found_conditions = public_cache.conditions(request)
    async with public.reader(request) as db:
        found = await public.org_is_public(db, org)
        if found is None:
            raise PublicNotFound()
        rows = await public.feed_entries(db, org, category=category, tag=tag)
    settings = request.app.state.settings
    base = settings.PUBLIC_URL.rstrip("/")
    query = request.scope["query_string"].decode("latin-1")
    feed_url = f"{base}{request.scope['path']}"
    if query:
        feed_url += f"?{query}"
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _text(feed, "id", feed_url)
    _text(feed, "title", found[1])
    last_modified = max((r["updated_at"] for r in rows), default=None)
    # An empty feed's `updated` is fixed, so that its ETag holds until an article comes.
    _text(feed, "updated", public.iso(last_modified or _EPOCH))
    ET.SubElement(feed, f"{{{ATOM_NS}}}link", rel="self", href=feed_url)
    for row in rows:
        url = settings.PUBLIC_ARTICLE_URL.format(
            public_url=base, org=quote(org, safe=""), slug=row["slug"]
        )
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
    return public_cache.respond(
        request, body, ATOM_MEDIA_TYPE, last_modified=last_modified, found=found_conditions
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def add_public_routes(router: APIRouter, prefix: str) -> None:
    """Register the public reads on `router` (the app's own) under `prefix`, flat and
    first.

    As `LeanRoute`s (`townsquare.routing`): the endpoints take only path and query
    parameters and answer their own `Response`; they open no request session (they read
    through `public.reader`), so `TransactionalRoute`'s commit has nothing to do."""
    base = prefix + PUBLIC_PREFIX
    before = len(router.routes)
    not_modified: dict[int | str, dict[str, Any]] = {
        304: {"description": "Not modified: the `If-None-Match` or `If-Modified-Since` copy"}
    }
    not_public: dict[int | str, dict[str, Any]] = {
        **not_modified,
        404: {"description": "Unknown organization or its CMS is off"},
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
        responses={
            **not_modified,
            301: {"description": "An old slug of the article: `Location` is its current one"},
            404: {"description": "No such published article"},
        },
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
    router.add_api_route(
        base,
        get_public_org,
        methods=["GET"],
        tags=TAGS,
        response_model=PublicOrganization,
        responses={**not_modified, 404: {"description": "No such organization"}},
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
