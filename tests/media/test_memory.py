"""QUALITY bar 23: a 50 MB upload keeps the process's memory flat, and limit + 1 bytes are
refused without being buffered. The body streams from an async generator through httpx's
ASGI transport (which hands the app one chunk at a time), and the process's resident set
is sampled from /proc while it runs."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from types import TracebackType

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.media import files
from tests.media.conftest import Media, MediaFactory, media_rows, problem
from townsquare.storage.duties import delete_objects

MB = 1024 * 1024
FIFTY_MB = 50 * MB
GROWTH_LIMIT = 20 * MB

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the resident set from /proc"
)


def resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class PeakResidentSet:
    """The highest resident set seen, sampled by a thread every few milliseconds (a thread,
    so that samples are taken even while the event loop is busy)."""

    def __init__(self) -> None:
        self.baseline = 0
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, resident_bytes())
            time.sleep(0.002)

    def __enter__(self) -> PeakResidentSet:
        gc.collect()
        self.baseline = self.peak = resident_bytes()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, resident_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


async def _warm_up(media: Media) -> None:
    # Imports, connections and the first parser are made before measuring.
    response = await media.client.post(
        media.base,
        content=files.streamed_multipart(2 * MB),
        headers={"Content-Type": files.CONTENT_TYPE},
    )
    assert response.status_code == 201, response.text
    assert (await media.client.delete(f"{media.base}/{response.json()['id']}")).status_code == 204
    assert await delete_objects(media.duty_context()) == 1


async def test_a_50_mb_upload_keeps_memory_flat(media_factory: MediaFactory) -> None:
    media = await media_factory(MEDIA_MAX_BYTES=FIFTY_MB)
    await _warm_up(media)
    with PeakResidentSet() as rss:
        started = time.perf_counter()
        response = await media.client.post(
            media.base,
            content=files.streamed_multipart(FIFTY_MB),
            headers={"Content-Type": files.CONTENT_TYPE},
        )
        seconds = time.perf_counter() - started
    assert response.status_code == 201, response.text
    assert response.json()["size"] == FIFTY_MB
    print(
        f"\n[{media.backend.name}] 50 MB multipart upload: resident set grew by "
        f"{rss.growth / MB:.1f} MB (from {rss.baseline / MB:.0f} MB to {rss.peak / MB:.0f} MB), "
        f"{FIFTY_MB / MB / seconds:.0f} MB/s"
    )
    assert rss.growth < GROWTH_LIMIT


async def test_limit_plus_one_is_refused_without_buffering(
    media_factory: MediaFactory, session: AsyncSession
) -> None:
    media = await media_factory(MEDIA_MAX_BYTES=FIFTY_MB)
    await _warm_up(media)
    with PeakResidentSet() as rss:
        response = await media.client.post(
            media.base,
            content=files.streamed_multipart(FIFTY_MB + 1),
            headers={"Content-Type": files.CONTENT_TYPE},
        )
    problem(response, 413, "file_too_large")
    print(
        f"\n[{media.backend.name}] 50 MB + 1 byte refused (413): resident set grew by "
        f"{rss.growth / MB:.1f} MB"
    )
    assert rss.growth < GROWTH_LIMIT
    assert await media.backend.stored() == []
    assert await media_rows(session, media.org) == 0
