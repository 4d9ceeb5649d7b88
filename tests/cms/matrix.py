"""The CMS routes in the authorization matrix (see tests/orgs/matrix.py): every management
route needs `cms:write` and the `cms` module; drafts are unpublished work, so reads too."""

from __future__ import annotations

from tests.orgs.matrix import RouteKey, Rule, needs
from townsquare.orgs.enums import Module, Permission

ORG = "/api/v1/orgs/{org}"
ARTICLE = f"{ORG}/articles/{{article_id}}"


def _cms(*, body: object = None, path: dict[str, str] | None = None) -> Rule:
    return needs(Permission.cms_write, module=Module.cms, body=body, path=path)


ROUTES: dict[RouteKey, Rule] = {
    ("POST", f"{ORG}/articles"): _cms(body={"title": "Hello"}),
    ("GET", f"{ORG}/articles"): _cms(),
    ("GET", f"{ORG}/articles/by-slug/{{slug}}"): _cms(path={"slug": "hello"}),
    ("GET", ARTICLE): _cms(),
    ("PATCH", ARTICLE): _cms(body={"title": "Hello again", "version": 1}),
    ("DELETE", ARTICLE): _cms(),
    ("POST", f"{ARTICLE}/publish"): _cms(body={"version": 1}),
    ("POST", f"{ARTICLE}/unpublish"): _cms(body={"version": 1}),
    ("POST", f"{ARTICLE}/archive"): _cms(body={"version": 1}),
    ("POST", f"{ARTICLE}/schedule"): _cms(
        body={"publish_at": "2099-01-01T00:00:00Z", "version": 1}
    ),
    ("GET", f"{ARTICLE}/revisions"): _cms(),
    ("POST", f"{ARTICLE}/revisions/{{number}}/restore"): _cms(
        body={"version": 1}, path={"number": "1"}
    ),
    ("PUT", f"{ARTICLE}/tags"): _cms(body={"tag_ids": [], "version": 1}),
    ("POST", f"{ORG}/categories"): _cms(body={"name": "News"}),
    ("GET", f"{ORG}/categories"): _cms(),
    ("GET", f"{ORG}/categories/{{category_id}}"): _cms(),
    ("PATCH", f"{ORG}/categories/{{category_id}}"): _cms(body={"name": "Renamed"}),
    ("DELETE", f"{ORG}/categories/{{category_id}}"): _cms(),
    ("POST", f"{ORG}/tags"): _cms(body={"name": "Events"}),
    ("GET", f"{ORG}/tags"): _cms(),
    ("GET", f"{ORG}/tags/{{tag_id}}"): _cms(),
    ("PATCH", f"{ORG}/tags/{{tag_id}}"): _cms(body={"name": "Renamed"}),
    ("DELETE", f"{ORG}/tags/{{tag_id}}"): _cms(),
}
