"""The per-organization quota with real commits: uploads racing for its last bytes (exactly
one fits), and pending direct uploads counted as reserved."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from datetime import timedelta
from types import ModuleType
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import add_member, create_organization, create_user, sign_in
from tests.media import files
from tests.media.conftest import Backend, Media, problem, put_upload
from townsquare.db import Database
from townsquare.main import create_app
from townsquare.media import service, uploads
from townsquare.media.duties import expire_uploads
from townsquare.media.models import MediaItem
from townsquare.orgs.enums import MemberRole
from townsquare.storage.duties import delete_objects

SIZE = 40 * 1024
QUOTA = SIZE + SIZE // 2  # room for one more file of SIZE, not two

CommittedMedia = Callable[..., Awaitable[Media]]


@pytest.fixture
async def committed_media(
    committed_db: Database, backend: Backend
) -> AsyncIterator[CommittedMedia]:
    """The app over `backend` and a database whose commits are real, with a fresh org and
    its signed-in editor."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: object) -> Media:
            settings = backend.settings(**overrides)
            app = create_app(settings, database=committed_db)
            await stack.enter_async_context(LifespanManager(app))
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50200))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://testserver")
            )
            anonymous = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://testserver")
            )
            session: AsyncSession = committed_db.session()
            async with session:
                owner = await create_user(session)
                org = await create_organization(session, owner=owner)
                editor = await create_user(session)
                await add_member(session, org, editor, MemberRole.editor)
                await sign_in(session, client, editor)
                await session.commit()
            return Media(app, backend, settings, client, anonymous, org, editor, committed_db)

        yield make


def _upload(media: Media, n: int) -> Awaitable[httpx.Response]:
    return media.client.post(
        media.base,
        files={"file": (f"clip{n}.mp4", files.mp4(SIZE), "video/mp4")},
    )


async def _rows(media: Media) -> int:
    async with media.db.session() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(MediaItem)
                .where(MediaItem.organization_id == media.org.id)
            )
            or 0
        )


def _meet_before_the_lock(monkeypatch: pytest.MonkeyPatch, parties: int) -> None:
    """Both requests have streamed and checked their file before either takes the
    organization's lock, so they really race for the quota."""
    barrier = asyncio.Barrier(parties)
    real_lock = service.lock_organization

    async def meet_then_lock(session: Any, organization_id: Any) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(barrier.wait(), timeout=10)
        await real_lock(session, organization_id)

    monkeypatch.setattr(uploads, "lock_organization", meet_then_lock)


class TestRace:
    @pytest.mark.parametrize("round_", range(3))
    async def test_two_uploads_for_the_last_bytes(
        self,
        committed_media: CommittedMedia,
        monkeypatch: pytest.MonkeyPatch,
        round_: int,
    ) -> None:
        media = await committed_media(MEDIA_QUOTA_BYTES_PER_ORG=QUOTA)
        _meet_before_the_lock(monkeypatch, 2)
        answers = await asyncio.gather(_upload(media, 1), _upload(media, 2))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201, 413], [a.text for a in answers]
        [refused] = [answer for answer in answers if answer.status_code == 413]
        problem(refused, 413, "quota_exceeded")
        assert await _rows(media) == 1
        # The refused file left nothing behind.
        assert len(await media.backend.objects()) == 1

    async def test_two_reservations_for_the_last_bytes(
        self, committed_media: CommittedMedia
    ) -> None:
        media = await committed_media(MEDIA_QUOTA_BYTES_PER_ORG=QUOTA)

        def reserve() -> Awaitable[httpx.Response]:
            return media.client.post(
                f"{media.base}/uploads",
                json={"filename": "a.mp4", "content_type": "video/mp4", "size": SIZE},
            )

        answers = await asyncio.gather(reserve(), reserve(), reserve())
        assert sorted(a.status_code for a in answers) == [201, 413, 413]
        assert await _rows(media) == 1


class TestReservations:
    async def test_pending_uploads_count_until_they_expire(
        self, committed_media: CommittedMedia, clock: ModuleType
    ) -> None:
        media = await committed_media(MEDIA_QUOTA_BYTES_PER_ORG=QUOTA)
        reserved = await media.client.post(
            f"{media.base}/uploads",
            json={"filename": "a.mp4", "content_type": "video/mp4", "size": SIZE},
        )
        assert reserved.status_code == 201
        # The reservation holds SIZE of the quota: another file of SIZE does not fit...
        problem(await _upload(media, 1), 413, "quota_exceeded")
        response = await media.client.post(
            f"{media.base}/uploads",
            json={"filename": "b.mp4", "content_type": "video/mp4", "size": SIZE},
        )
        problem(response, 413, "quota_exceeded")
        # ...until the upload expires and the duty frees it.
        clock.travel(timedelta(seconds=media.settings.MEDIA_UPLOAD_TTL_SECONDS + 1))
        assert await expire_uploads(media.duty_context()) == 1
        assert (await _upload(media, 2)).status_code == 201
        assert await _rows(media) == 1

    async def test_completing_counts_the_real_size(self, committed_media: CommittedMedia) -> None:
        media = await committed_media(MEDIA_QUOTA_BYTES_PER_ORG=QUOTA)
        first = await media.client.post(
            f"{media.base}/uploads",
            json={"filename": "a.mp4", "content_type": "video/mp4", "size": 1000},
        )
        upload = first.json()
        # The client reserved 1000 bytes and stored more than the quota has left.
        big = files.mp4(QUOTA + 1)
        if media.backend.name == "local":
            # The local URL refuses more than was reserved while the bytes arrive.
            problem(await put_upload(media, upload, big), 413, "file_too_large")
            return
        assert (await put_upload(media, upload, big)).status_code == 200
        response = await media.client.post(f"{media.base}/uploads/{upload['upload_id']}/complete")
        problem(response, 413, "quota_exceeded")
        assert await _rows(media) == 0
        await delete_objects(media.duty_context())
        assert await media.backend.objects() == []

    async def test_a_full_organization_is_refused_before_streaming(
        self, committed_media: CommittedMedia
    ) -> None:
        media = await committed_media(MEDIA_QUOTA_BYTES_PER_ORG=SIZE)
        assert (await _upload(media, 1)).status_code == 201
        problem(await _upload(media, 2), 413, "quota_exceeded")
        assert await _rows(media) == 1
        assert len(await media.backend.objects()) == 1


class TestCompleteRace:
    @pytest.mark.parametrize("round_", range(2))
    async def test_two_completes_of_one_upload(
        self, committed_media: CommittedMedia, round_: int
    ) -> None:
        media = await committed_media()
        data = files.png(300, 200)
        reserved = await media.client.post(
            f"{media.base}/uploads",
            json={"filename": "a.png", "content_type": "image/png", "size": len(data)},
        )
        upload = reserved.json()
        assert (await put_upload(media, upload, data)).status_code == 200
        url = f"{media.base}/uploads/{upload['upload_id']}/complete"
        answers = await asyncio.gather(media.client.post(url), media.client.post(url))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses[0] == 200, [a.text for a in answers]
        assert statuses[1] in {404, 409}, [a.text for a in answers]
        assert await _rows(media) == 1
        detail = await media.client.get(f"{media.base}/{upload['upload_id']}")
        assert detail.json()["status"] == "ready"
        # One object: the one the item points at.
        [key] = await media.backend.objects()
        assert f"/media/{upload['upload_id']}/original-" in key
