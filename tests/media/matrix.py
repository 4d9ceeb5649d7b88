"""The media library's routes in the authorization matrix (`tests/orgs/matrix.py`)."""

from __future__ import annotations

import io

from PIL import Image

from tests.orgs.matrix import RouteKey, Rule, needs
from townsquare.orgs.enums import Permission


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


MEDIA = "/api/v1/orgs/{org}/media"
P = Permission

ROUTES: dict[RouteKey, Rule] = {
    ("POST", MEDIA): needs(P.media_manage, files={"file": ("dot.png", _png(), "image/png")}),
    ("GET", MEDIA): needs(P.media_manage),
    ("POST", f"{MEDIA}/uploads"): needs(
        P.media_manage, body={"filename": "dot.png", "content_type": "image/png", "size": 100}
    ),
    ("POST", f"{MEDIA}/uploads/{{upload_id}}/complete"): needs(P.media_manage),
    ("GET", f"{MEDIA}/{{media_id}}"): needs(P.media_manage),
    ("PATCH", f"{MEDIA}/{{media_id}}"): needs(P.media_manage, body={"alt": "A dot"}),
    ("DELETE", f"{MEDIA}/{{media_id}}"): needs(P.media_manage),
}
