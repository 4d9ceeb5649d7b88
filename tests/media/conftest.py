"""Fixtures of the media tests: the app over either storage backend (a folder of its own,
or a fresh bucket on moto's S3 server), an organization and a signed-in editor."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, make_settings
from tests.factories import add_member, create_organization, create_user, sign_in
from tests.storage.servers import S3Server, s3_server
from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db import SessionSource
from townsquare.main import create_app
from townsquare.media.models import MediaItem
from townsquare.media.service import upload_key
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Organization
from townsquare.storage.base import Storage
from townsquare.worker.registry import DutyContext

__all__ = ["API", "Backend", "Media", "s3_server"]

API = "/api/v1"
BACKENDS = ("local", "s3")


@dataclass
class Backend:
    """One storage backend as the tests see it: its settings, and what it holds."""

    name: str
    media_dir: Path
    server: S3Server | None = None
    bucket: str | None = None

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {"MEDIA_DIR": self.media_dir}
        if self.server is not None and self.bucket is not None:
            values |= self.server.settings(self.bucket)
        return make_settings(**(values | overrides))

    async def stored(self) -> list[str]:
        """Everything kept: every file under the folder (partial files and type notes
        included), or every object and open multipart upload in the bucket."""
        if self.server is not None and self.bucket is not None:
            return await self.server.keys(self.bucket)
        if not self.media_dir.exists():
            return []
        return sorted(
            str(path.relative_to(self.media_dir))
            for path in self.media_dir.rglob("*")
            if path.is_file()
        )

    async def objects(self) -> list[str]:
        """The stored objects' keys (without the local backend's type notes)."""
        return [key for key in await self.stored() if not key.endswith(".content-type")]

    async def overwrite(self, key: str, data: bytes, content_type: str) -> None:
        """Replace an object behind the app's back, as a second client could."""
        if self.server is not None and self.bucket is not None:
            await self.server.put(self.bucket, key, data, content_type)
            return
        path = self.media_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    media_dir = tmp_path / "media"
    if request.param == "local":
        return Backend("local", media_dir)
    server: S3Server = request.getfixturevalue("s3_server")
    return Backend("s3", media_dir, server=server, bucket=await server.new_bucket())


@dataclass
class Media:
    """The app under test with its storage, an organization, and its signed-in editor."""

    app: FastAPI
    backend: Backend
    settings: Settings
    client: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    org: Organization
    editor: User
    db: SessionSource

    @property
    def storage(self) -> Storage:
        storage: Storage = self.app.state.storage
        return storage

    @property
    def base(self) -> str:
        return f"{API}/orgs/{self.org.slug}/media"

    def duty_context(self) -> DutyContext:
        return DutyContext(
            db=self.db, settings=self.settings, worker_id="tests", storage_backend=self.storage
        )

    async def upload(
        self,
        data: bytes,
        filename: str = "picture.png",
        content_type: str | None = "image/png",
        **fields: str,
    ) -> httpx.Response:
        file: Any = (filename, data) if content_type is None else (filename, data, content_type)
        return await self.client.post(self.base, files={"file": file}, data=fields)

    async def uploaded(self, data: bytes, filename: str, content_type: str) -> dict[str, Any]:
        response = await self.upload(data, filename, content_type)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


MediaFactory = Callable[..., Awaitable[Media]]


@pytest.fixture
async def media_factory(
    db: RolledBackDatabase, session: AsyncSession, backend: Backend
) -> AsyncIterator[MediaFactory]:
    """Builds the app over `backend` with settings overridden as asked, an org, an editor."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: object) -> Media:
            settings = backend.settings(**overrides)
            app = create_app(settings, database=db)
            await stack.enter_async_context(LifespanManager(app))
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50100))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://testserver")
            )
            anonymous = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://testserver")
            )
            owner = await create_user(session, display_name="Olga Owner")
            org = await create_organization(session, owner=owner)
            editor = await create_user(session, display_name="Edna Editor")
            await add_member(session, org, editor, MemberRole.editor)
            await sign_in(session, client, editor)
            return Media(app, backend, settings, client, anonymous, org, editor, db)

        yield make


@pytest.fixture
async def media(media_factory: MediaFactory) -> Media:
    return await media_factory()


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def media_rows(session: AsyncSession, org: Organization) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(MediaItem).where(MediaItem.organization_id == org.id)
        )
        or 0
    )


async def download(media: Media, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET a download URL as a browser would: no session, straight to the app (local
    backend) or to the store (S3)."""
    if url.startswith("http://testserver/"):
        return await media.anonymous.get(url, headers=headers)
    async with httpx.AsyncClient() as outside:
        return await outside.get(url, headers=headers)


async def put_upload(
    media: Media, upload: dict[str, Any], data: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    """PUT a direct upload as a browser would: to the URL it was given, with its headers."""
    sent = {**upload["headers"], **(headers or {})}
    if upload["url"].startswith("http://testserver/"):
        return await media.anonymous.put(upload["url"], content=data, headers=sent)
    async with httpx.AsyncClient() as outside:
        return await outside.put(upload["url"], content=data, headers=sent)


KEY = re.compile(r"^orgs/[0-9a-f-]{36}/media/[0-9a-f-]{36}/original$")
"""The key of a multipart upload's object: made by the server, nothing of the client's."""


async def assert_nothing_kept(media: Media, session: AsyncSession) -> None:
    assert await media.backend.stored() == []
    assert await media_rows(session, media.org) == 0


async def reserve(
    media: Media,
    size: int,
    filename: str = "photo.png",
    content_type: str = "image/png",
    **extra: object,
) -> dict[str, Any]:
    response = await media.client.post(
        f"{media.base}/uploads",
        json={"filename": filename, "content_type": content_type, "size": size, **extra},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def complete(media: Media, upload: dict[str, Any]) -> Any:
    return await media.client.post(f"{media.base}/uploads/{upload['upload_id']}/complete")


def key_of(media: Media, upload: dict[str, Any]) -> str:
    """Where the upload's URL writes."""
    return upload_key(media.org.id, uuid.UUID(upload["upload_id"]))


async def item_of(session: AsyncSession, upload: dict[str, Any]) -> MediaItem | None:
    return await session.scalar(
        select(MediaItem)
        .where(MediaItem.id == uuid.UUID(upload["upload_id"]))
        .execution_options(populate_existing=True)
    )
