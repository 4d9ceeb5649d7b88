"""Clients of the scale-out cluster: signed-in HTTP clients per process, live sockets."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from tests.realtime.conftest import Person
from tests.scaleout.conftest import PUBLIC_URL, Cluster, Process
from townsquare.auth.deps import CSRF_HEADER

FRAME_TIMEOUT = 5.0


def signed_in_headers(cluster: Cluster, someone: Person) -> dict[str, str]:
    return {
        "Cookie": f"{cluster.settings.SESSION_COOKIE_NAME}={someone.token}",
        CSRF_HEADER: someone.csrf_token,
        "Origin": PUBLIC_URL,
    }


async def http_client(
    stack: AsyncExitStack, cluster: Cluster, process: Process, someone: Person | None = None
) -> httpx.AsyncClient:
    """A client of one API process, signed in as `someone` when given."""
    headers = signed_in_headers(cluster, someone) if someone else {"Origin": PUBLIC_URL}
    return await stack.enter_async_context(
        httpx.AsyncClient(base_url=process.api, headers=headers, timeout=30)
    )


async def open_socket(
    stack: AsyncExitStack, cluster: Cluster, process: Process, someone: Person
) -> ClientConnection:
    """A live socket of `someone` on `process`, after its `ready` frame."""
    headers = {"Cookie": f"{cluster.settings.SESSION_COOKIE_NAME}={someone.token}"}
    ws = await stack.enter_async_context(
        connect(process.ws_url, additional_headers=headers, origin=Origin(PUBLIC_URL))
    )
    ready = await next_frame(ws)
    assert ready["type"] == "ready", ready
    return ws


async def next_frame(
    ws: ClientConnection, *, skip: tuple[str, ...] = ("ping",), timeout: float = FRAME_TIMEOUT
) -> dict[str, Any]:
    """The next frame whose type is not in `skip`."""
    while True:
        raw = await asyncio.wait_for(ws.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw)
        if frame["type"] not in skip:
            return frame


async def next_message(ws: ClientConnection, *, timeout: float = FRAME_TIMEOUT) -> dict[str, Any]:
    """The data of the next `message.created` frame (other frames are passed over)."""
    while True:
        frame = await next_frame(ws, timeout=timeout)
        if frame["type"] == "message.created":
            data: dict[str, Any] = frame["data"]
            return data
