"""The media routes in the authorization matrix (see tests/orgs/matrix.py): all of them need
`media:manage` (owners, admins, editors); the library is shared by the modules, so none
depends on one being on."""

from __future__ import annotations

from tests.media import files
from tests.orgs.matrix import RouteKey, Rule, needs
from townsquare.orgs.enums import Permission

MEDIA = "/api/v1/orgs/{org}/media"


def _media(*, body: object = None, files: dict[str, object] | None = None) -> Rule:
    return needs(Permission.media_manage, body=body, files=files)


ROUTES: dict[RouteKey, Rule] = {
    ("POST", MEDIA): _media(files={"file": ("a.png", files.png(8, 8), "image/png")}),
    ("GET", MEDIA): _media(),
    ("POST", f"{MEDIA}/uploads"): _media(
        body={"filename": "a.png", "content_type": "image/png", "size": 100}
    ),
    ("POST", f"{MEDIA}/uploads/{{upload_id}}/complete"): _media(),
    ("GET", f"{MEDIA}/{{media_id}}"): _media(),
    ("PATCH", f"{MEDIA}/{{media_id}}"): _media(body={"alt": "A description"}),
    ("DELETE", f"{MEDIA}/{{media_id}}"): _media(),
}
