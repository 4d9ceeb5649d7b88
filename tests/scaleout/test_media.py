"""Media on the shared bucket: an upload presigned and completed through one API process
is downloadable through the other, and one of the workers makes its variants."""

from __future__ import annotations

import asyncio
import io
import time
from contextlib import AsyncExitStack
from typing import Any

import httpx
from PIL import Image

from tests.realtime.conftest import organization, person
from tests.scaleout.clients import http_client
from tests.scaleout.conftest import SCALEOUT, Cluster
from townsquare.db import Database
from townsquare.orgs.enums import MemberRole

pytestmark = SCALEOUT


def _photo() -> bytes:
    image = Image.new("RGB", (1600, 1200), (30, 120, 200))
    for x in range(0, 1600, 40):
        image.paste((240, 200, 40), (x, 0, x + 10, 1200))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


async def test_an_upload_through_one_process_is_served_by_the_other_with_variants(
    cluster: Cluster, shared_db: Database
) -> None:
    editor = await person(shared_db, cluster.settings, display_name="Editor")
    org = await organization(shared_db, {MemberRole.owner: [editor]})
    photo = _photo()
    async with AsyncExitStack() as stack:
        through_a = await http_client(stack, cluster, cluster.a, editor)
        through_b = await http_client(stack, cluster, cluster.b, editor)
        bucket = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        answer = await through_a.post(
            f"/orgs/{org.slug}/media/uploads",
            json={"filename": "harbour.jpg", "content_type": "image/jpeg", "size": len(photo)},
        )
        assert answer.status_code == 201, answer.text
        upload = answer.json()
        assert upload["url"].startswith(cluster.s3.url)
        put = await bucket.request(
            upload["method"], upload["url"], headers=upload["headers"], content=photo
        )
        assert put.status_code == 200, put.text
        completed = await through_a.post(
            f"/orgs/{org.slug}/media/uploads/{upload['upload_id']}/complete"
        )
        assert completed.status_code == 200, completed.text
        media_id = completed.json()["id"]

        started = time.perf_counter()
        media: dict[str, Any] = {}
        while not media.get("variants"):
            assert time.perf_counter() - started < 30, f"no variants: {media}"
            await asyncio.sleep(0.2)
            seen = await through_b.get(f"/orgs/{org.slug}/media/{media_id}")
            assert seen.status_code == 200, seen.text
            media = seen.json()
        waited = time.perf_counter() - started
        original = await bucket.get(media["url"])
        assert original.status_code == 200
        assert original.content == photo
        widths = []
        for variant in media["variants"]:
            fetched = await bucket.get(variant["url"])
            assert fetched.status_code == 200
            made = Image.open(io.BytesIO(fetched.content))
            assert made.format == "WEBP"
            assert made.size == (variant["width"], variant["height"])
            widths.append(variant["width"])
    stored = [key for key in await cluster.s3.keys(cluster.bucket) if media_id in key]
    cluster.check_alive()
    print(
        f"\nupload through A, read through B: variants {widths} made {waited:.1f} s after "
        f"completing; {len(stored)} objects in the bucket for it"
    )
    assert len(widths) == len(set(widths))
    assert len(stored) == 1 + len(widths)
    assert (media["width"], media["height"]) == (1600, 1200)
