"""Live-event tests run a real uvicorn server on loopback (in this process, so the bus and
the module constants are shared with the test) and talk to it with the `websockets`
client. The server's database is `committed_db`: its requests see the test's commits."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from starlette.routing import NoMatchFound
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from tests.conftest import make_settings
from tests.factories import add_member, create_organization, create_user
from townsquare.auth import sessions as auth_sessions
from townsquare.auth.models import User
from townsquare.config import Settings
from townsquare.db import Database, transaction
from townsquare.kit import clock
from townsquare.main import create_app
from townsquare.orgs.enums import MemberRole, Module
from townsquare.orgs.models import Organization
from townsquare.realtime import bus as bus_module
from townsquare.realtime import socket as socket_module
from townsquare.realtime.bus import Bus, MemoryBus
from townsquare.realtime.router import router as realtime_router
from townsquare.support.models import Conversation
from townsquare.support.router import router as support_router

REDIS_URL = os.environ.get("TOWNSQUARE_TEST_REDIS_URL") or "redis://127.0.0.1:6379/14"
OWN_ORIGIN = Origin("http://testserver")
FRAME_TIMEOUT = 5.0


@dataclass
class LiveServer:
    app: FastAPI
    settings: Settings
    port: int
    bus: Bus

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"


StartServer = Callable[..., Awaitable[LiveServer]]


class _Server(uvicorn.Server):
    """Says when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.up.set()


_apps: dict[tuple[object, ...], FastAPI] = {}


def _has_route(app: FastAPI, name: str, **params: str) -> bool:
    try:
        app.url_path_for(name, **params)
    except NoMatchFound:
        return False
    return True


def _app(database: Database, nth: int, overrides: dict[str, Any]) -> FastAPI:
    """An app with the live-event route; built once per settings (building one takes a
    second) and pointed at this test's database."""
    key = (nth, *sorted(overrides.items()))
    app = _apps.get(key)
    if app is None:
        app = create_app(make_settings(**overrides), database=database)
        # Until main.py mounts them.
        if not _has_route(app, "live_events"):
            app.include_router(realtime_router, prefix="/api/v1")
        if not _has_route(app, "list_messages", org="o", conversation_id="c"):
            app.include_router(support_router, prefix="/api/v1")
        _apps[key] = app
    app.state.database = database
    return app


@pytest.fixture
async def start_server(committed_db: Database) -> AsyncIterator[StartServer]:
    """Starts uvicorn servers on free loopback ports; each has its own bus (a memory bus
    unless given one), and the first one's bus is the process's (what `publish` uses)."""
    async with AsyncExitStack() as stack:
        started: list[LiveServer] = []

        async def start(bus: Bus | None = None, **overrides: Any) -> LiveServer:
            app = _app(committed_db, len(started), overrides)
            settings: Settings = app.state.settings
            bus = bus if bus is not None else MemoryBus()
            stack.push_async_callback(bus.close)
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
            server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
            task = asyncio.create_task(server.serve(sockets=[listener]))

            async def stop() -> None:
                server.should_exit = True
                await task
                listener.close()

            stack.push_async_callback(stop)
            up = asyncio.create_task(server.up.wait())
            await asyncio.wait([task, up], return_when=asyncio.FIRST_COMPLETED)
            up.cancel()
            if task.done():
                task.result()
                raise RuntimeError("the test server did not start")
            live = LiveServer(app, settings, listener.getsockname()[1], bus)
            started.append(live)
            # After the lifespan ran, which may have set a bus of its own.
            app.state.bus = live.bus
            bus_module.set_bus(started[0].bus)
            return live

        try:
            yield start
        finally:
            bus_module.set_bus(None)


@pytest.fixture
async def server(start_server: StartServer) -> LiveServer:
    return await start_server()


class MovableClock:
    """Stands in for `time.monotonic` where a socket throttles typing."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        import time

        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def socket_clock(monkeypatch: pytest.MonkeyPatch) -> MovableClock:
    moved = MovableClock()
    monkeypatch.setattr(socket_module, "monotonic", moved)
    return moved


# --- arranging -------------------------------------------------------------------------


@dataclass
class Person:
    user: User
    token: str
    csrf_token: str

    @property
    def id(self) -> uuid.UUID:
        return self.user.id


async def person(db: Database, settings: Settings, *, display_name: str = "Pat") -> Person:
    """A user with a live session (its cookie token), committed."""
    async with transaction(db) as session:
        user = await create_user(session, display_name=display_name)
        issued = await auth_sessions.start_session(session, settings, user, user_agent="tests")
    return Person(user, issued.token, issued.csrf_token)


async def organization(
    db: Database,
    members: dict[MemberRole, list[Person]] | None = None,
    *,
    modules: tuple[Module, ...] = (Module.cms, Module.events, Module.support),
) -> Organization:
    async with transaction(db) as session:
        org = await create_organization(session, modules=modules)
        for role, people in (members or {}).items():
            for someone in people:
                await add_member(session, org, someone.user, role)
    return org


async def conversation(db: Database, org: Organization, customer: Person) -> Conversation:
    async with transaction(db) as session:
        row = Conversation(
            organization_id=org.id,
            customer_id=customer.id,
            subject="Help",
            last_activity_at=clock.now(),
            last_public_activity_at=clock.now(),
        )
        session.add(row)
        await session.flush()
    return row


# --- talking ---------------------------------------------------------------------------


def cookie_for(settings: Settings, someone: Person) -> dict[str, str]:
    return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={someone.token}"}


async def open_socket(
    stack: AsyncExitStack, server: LiveServer, someone: Person | None, **options: Any
) -> ClientConnection:
    """A client socket of `someone` (from our own origin), after its `ready`."""
    headers = cookie_for(server.settings, someone) if someone is not None else {}
    ws = await stack.enter_async_context(
        connect(server.url, additional_headers=headers, origin=OWN_ORIGIN, **options)
    )
    ready = await next_frame(ws)
    assert ready["type"] == "ready", ready
    return ws


async def next_frame(ws: ClientConnection, *, skip: tuple[str, ...] = ("ping",)) -> dict[str, Any]:
    """The next frame whose type is not in `skip`."""
    while True:
        raw = await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT)
        frame: dict[str, Any] = json.loads(raw)
        if frame["type"] not in skip:
            return frame


async def settle(ws: ClientConnection) -> list[dict[str, Any]]:
    """Ping and wait for the pong: every frame sent before has been handled by the server.
    Returns what arrived meanwhile."""
    await ws.send(json.dumps({"type": "ping"}))
    seen: list[dict[str, Any]] = []
    while True:
        frame = await next_frame(ws)
        if frame["type"] == "pong":
            return seen
        seen.append(frame)
