"""Fixtures of the support chat tests: an organization with agents, a member who is no
agent, customers who are not members, and helpers to talk to the chat over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase
from tests.factories import add_member, create_organization, create_user, sign_in
from tests.media.conftest import BACKENDS, Backend
from tests.storage.servers import S3Server, s3_server
from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.main import API_PREFIX, create_app
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import AuditLogEntry, Organization
from townsquare.realtime.bus import Event, Subscription, get_bus

API = API_PREFIX
__all__ = ["s3_server"]  # a fixture of the attachment tests
NewClient = Callable[[], Awaitable[httpx.AsyncClient]]


@dataclass
class Desk:
    """An organization "Acme" whose support is on: owner, two agents, a member without the
    support permission, two customers who are not members, and another organization."""

    org: Organization
    other_org: Organization
    users: dict[str, User]
    clients: dict[str, httpx.AsyncClient]
    anonymous: httpx.AsyncClient

    def url(self, suffix: str = "", *, org: Organization | None = None) -> str:
        return f"{API}/orgs/{(org or self.org).slug}{suffix}"

    def conv(self, conversation_id: str, suffix: str = "") -> str:
        return self.url(f"/conversations/{conversation_id}{suffix}")

    async def open(
        self, who: str = "customer", subject: str = "Help", body: str = "Hello"
    ) -> dict[str, Any]:
        response = await self.clients[who].post(
            self.url("/conversations"), json={"subject": subject, "body": body}
        )
        assert response.status_code == 201, response.text
        opened: dict[str, Any] = response.json()
        return opened

    async def send(
        self, who: str, conversation_id: str, body: str = "Hi", *, internal: bool = False
    ) -> dict[str, Any]:
        response = await self.clients[who].post(
            self.conv(conversation_id, "/messages"), json={"body": body, "internal": internal}
        )
        assert response.status_code == 201, response.text
        sent: dict[str, Any] = response.json()
        return sent

    async def act(self, who: str, conversation_id: str, action: str, **body: Any) -> httpx.Response:
        return await self.clients[who].post(
            self.conv(conversation_id, f"/{action}"), json=body if body else None
        )

    async def messages(self, who: str, conversation_id: str, **params: Any) -> dict[str, Any]:
        response = await self.clients[who].get(
            self.conv(conversation_id, "/messages"), params=params
        )
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    async def get(self, who: str, conversation_id: str) -> dict[str, Any]:
        response = await self.clients[who].get(self.conv(conversation_id))
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found


PEOPLE = {
    "owner": MemberRole.owner,
    "agent": MemberRole.agent,
    "agent2": MemberRole.agent,
    "member": MemberRole.member,
    "customer": None,
    "customer2": None,
}


async def make_desk(session: AsyncSession, new_client: NewClient) -> Desk:
    users = {
        name: await create_user(session, display_name=name.title().replace("2", " Two"))
        for name in PEOPLE
    }
    org = await create_organization(session, owner=users["owner"], name="Acme")
    for name, role in PEOPLE.items():
        if role is not None and role != MemberRole.owner:
            await add_member(session, org, users[name], role)
    users["outsider"] = await create_user(session, display_name="Outsider Agent")
    other = await create_organization(session, owner=users["outsider"], name="Elsewhere")
    clients = {}
    for name, user in users.items():
        clients[name] = await new_client()
        await sign_in(session, clients[name], user)
    return Desk(
        org=org, other_org=other, users=users, clients=clients, anonymous=await new_client()
    )


@pytest.fixture
async def desk(session: AsyncSession, new_client: NewClient) -> Desk:
    return await make_desk(session, new_client)


async def audit_actions(session: AsyncSession, org: Organization) -> list[str]:
    rows = await session.scalars(
        select(AuditLogEntry.action)
        .where(AuditLogEntry.organization_id == org.id)
        .order_by(AuditLogEntry.created_at, AuditLogEntry.id)
    )
    return list(rows.all())


class Listener:
    """A subscription to the process's bus, as a socket of the realtime module would have:
    a task collects what arrives."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.received: list[Event] = []
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for delivery in self.subscription.events():
            self.received.append(delivery.event)

    async def drain(self) -> list[Event]:
        """Everything received since the last drain (events are queued by the time the
        response that caused them arrives; the collector only needs a turn)."""
        for _ in range(20):
            await asyncio.sleep(0)
        found, self.received = self.received, []
        return found

    async def close(self) -> None:
        self._task.cancel()
        await self.subscription.close()


@pytest.fixture
async def listen() -> AsyncIterator[Callable[[str], Awaitable[Listener]]]:
    """Subscribes to channels of the process's bus; closed at the end."""
    opened: list[Listener] = []

    async def subscribe(channel: str) -> Listener:
        opened.append(Listener(await get_bus().subscribe([channel])))
        return opened[-1]

    yield subscribe
    await asyncio.gather(*(listener.close() for listener in opened))


# --- attachments: a desk over an app on either storage backend -------------------------


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The media tests' backends: a folder of its own, or a fresh bucket on moto's S3."""
    media_dir = tmp_path / "media"
    if request.param == "local":
        return Backend("local", media_dir)
    server: S3Server = request.getfixturevalue("s3_server")
    return Backend("s3", media_dir, server=server, bucket=await server.new_bucket())


@dataclass
class Files:
    """The desk over an app whose storage is `backend`."""

    desk: Desk
    backend: Backend
    settings: Settings
    app: FastAPI

    async def attach(
        self,
        who: str,
        conversation_id: str,
        data: bytes,
        filename: str = "photo.png",
        content_type: str | None = "image/png",
        **fields: str,
    ) -> httpx.Response:
        file: Any = (filename, data) if content_type is None else (filename, data, content_type)
        return await self.desk.clients[who].post(
            self.desk.conv(conversation_id, "/attachments"), files={"file": file}, data=fields
        )

    async def attached(
        self, who: str, conversation_id: str, data: bytes, filename: str = "photo.png", **kw: Any
    ) -> dict[str, Any]:
        response = await self.attach(who, conversation_id, data, filename, **kw)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def download(self, url: str) -> httpx.Response:
        """GET a download URL as a browser would: without a session, from the app (local)
        or from the store (S3)."""
        if url.startswith("http://testserver/"):
            return await self.desk.anonymous.get(url)
        async with httpx.AsyncClient() as outside:
            return await outside.get(url)


FilesFactory = Callable[..., Awaitable[Files]]


@pytest.fixture
async def files_factory(
    db: RolledBackDatabase, session: AsyncSession, backend: Backend
) -> AsyncIterator[FilesFactory]:
    """Builds the app over `backend` with settings overridden as asked, and its desk."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: object) -> Files:
            settings = backend.settings(**overrides)
            app = create_app(settings, database=db)
            await stack.enter_async_context(LifespanManager(app))

            async def new_client() -> httpx.AsyncClient:
                transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50200))
                return await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://testserver")
                )

            return Files(await make_desk(session, new_client), backend, settings, app)

        yield make


@pytest.fixture
async def chat(files_factory: FilesFactory) -> Files:
    return await files_factory()
