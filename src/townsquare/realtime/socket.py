"""One live socket: relays the bus to the client, answers its frames, keeps its access
current. The protocol is described in `realtime/router.py`."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict
from contextlib import suppress
from enum import IntEnum
from time import monotonic
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from townsquare.auth.deps import Authenticated
from townsquare.config import Settings
from townsquare.db import SessionSource, transaction
from townsquare.realtime.access import (
    ConversationParties,
    channels_for,
    conversation_parties,
)
from townsquare.realtime.bus import Bus, Delivery, Subscription
from townsquare.realtime.events import org_agents_channel, user_channel
from townsquare.realtime.rechecks import AccessRechecks

logger = logging.getLogger("townsquare.realtime")

SEND_QUEUE_SIZE = 1000
"""Events a socket may fall behind by before it is closed with 1013."""
MAX_FRAME_CHARS = 4096
TYPING_INTERVAL_SECONDS = 2.0
CLOSE_TIMEOUT_SECONDS = 5.0
# The same event published on two of a socket's channels arrives twice, close together.
_DUPLICATE_WINDOW_SECONDS = 10.0
_DUPLICATE_KEYS = 1024
_PARTIES_CACHED = 256


class Close(IntEnum):
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    NOT_AUTHENTICATED = 4401


_REASONS = {
    Close.MESSAGE_TOO_BIG: "frame too large",
    Close.INTERNAL_ERROR: "internal error",
    Close.TRY_AGAIN_LATER: "too far behind; reconnect",
    Close.NOT_AUTHENTICATED: "not signed in",
}


async def close_socket(websocket: WebSocket, code: Close) -> None:
    """Close with `code`, giving up after a while on a client that does not read."""
    with suppress(Exception):
        await asyncio.wait_for(websocket.close(code, _REASONS[code]), CLOSE_TIMEOUT_SECONDS)


class LiveSocket:
    """An accepted socket of a signed-in user, subscribed to what that user may hear."""

    def __init__(
        self,
        websocket: WebSocket,
        *,
        settings: Settings,
        database: SessionSource,
        bus: Bus,
        auth: Authenticated,
        token: str,
        agent_of: frozenset[uuid.UUID],
        rechecks: AccessRechecks,
    ) -> None:
        self.websocket = websocket
        self.settings = settings
        self.database = database
        self.bus = bus
        self.user_id = auth.user.id
        self.display_name = auth.user.display_name
        self.session_id = auth.session.id
        self._token = token
        self.agent_of = agent_of
        self.rechecks = rechecks
        self.channels = channels_for(self.user_id, agent_of)
        self._send_lock = asyncio.Lock()
        self._recent: OrderedDict[str, tuple[float, set[str]]] = OrderedDict()
        self._typed: dict[uuid.UUID, float] = {}
        self._parties: OrderedDict[uuid.UUID, ConversationParties] = OrderedDict()

    async def run(self) -> None:
        """Subscribe, say `ready`, then serve until the client leaves or must be closed."""
        subscription = await self.bus.subscribe(self.channels, queue_size=SEND_QUEUE_SIZE)
        try:
            await self._send("ready", self._access())
            code = await self._serve(subscription)
        except (OSError, WebSocketDisconnect, WebSocketDisconnected):
            return
        finally:
            await subscription.close()
        if code is not None:
            await close_socket(self.websocket, code)

    async def _serve(self, subscription: Subscription) -> Close | None:
        tasks = [
            asyncio.create_task(self._relay(subscription)),
            asyncio.create_task(self._receive()),
            asyncio.create_task(self._heartbeat(subscription)),
            asyncio.create_task(self._watch_overflow(subscription)),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finished = done.pop()
        try:
            return finished.result()
        except (OSError, WebSocketDisconnect, WebSocketDisconnected):
            return None
        except Exception:
            logger.exception("live socket failed")
            return Close.INTERNAL_ERROR

    # --- server to client ----------------------------------------------------------------

    async def _send(self, type_: str, data: dict[str, Any]) -> None:
        await self._send_text(json.dumps({"type": type_, "data": data}))

    async def _send_text(self, text: str) -> None:
        async with self._send_lock:
            await self.websocket.send_text(text)

    def _access(self) -> dict[str, Any]:
        return {
            "user_id": str(self.user_id),
            "agent_of": sorted(str(org_id) for org_id in self.agent_of),
            "heartbeat_seconds": self.settings.WS_HEARTBEAT_SECONDS,
        }

    async def _relay(self, subscription: Subscription) -> Close | None:
        async for item in subscription.events():
            if self._wanted(item):
                await self._send_text(item.text)
        return Close.TRY_AGAIN_LATER

    async def _watch_overflow(self, subscription: Subscription) -> Close:
        await subscription.overflowed()
        return Close.TRY_AGAIN_LATER

    def _wanted(self, item: Delivery) -> bool:
        data = item.event.get("data")
        if not isinstance(data, dict):
            data = {}
        if item.event.get("type") == "typing" and data.get("user_id") == str(self.user_id):
            return False
        return not self._duplicate(item, data)

    def _duplicate(self, item: Delivery, data: dict[str, Any]) -> bool:
        """The same event seen a moment ago on another of this socket's channels (an agent
        who is also the conversation's customer hears it on both)."""
        if "seq" in data and "conversation_id" in data:
            key = f"{item.event.get('type')}|{data['conversation_id']}|{data['seq']}"
        else:
            key = item.text
        now = monotonic()
        seen = self._recent.get(key)
        recent = seen is not None and now - seen[0] < _DUPLICATE_WINDOW_SECONDS
        if seen is not None and recent and item.channel not in seen[1]:
            seen[1].add(item.channel)
            return True
        # A new event, or the same content again on the same channel: a real repeat.
        self._recent[key] = (now, {item.channel})
        self._recent.move_to_end(key)
        while len(self._recent) > _DUPLICATE_KEYS:
            self._recent.popitem(last=False)
        return False

    async def _heartbeat(self, subscription: Subscription) -> Close:
        failures = 0
        while True:
            await asyncio.sleep(self.settings.WS_HEARTBEAT_SECONDS)
            try:
                agent_of = await self._recheck()
            except Exception:
                failures += 1
                logger.warning("live socket re-check failed", exc_info=True)
                if failures >= 2:
                    return Close.INTERNAL_ERROR
                continue
            failures = 0
            if agent_of is None:
                return Close.NOT_AUTHENTICATED
            await self._send("ping", {})
            if agent_of != self.agent_of:
                await self._change_access(subscription, agent_of)

    async def _recheck(self) -> frozenset[uuid.UUID] | None:
        """The organizations the user is an agent of now, or None if the session ended."""
        access = await self.rechecks.check(self._token)
        if access is None or access.session_id != self.session_id:
            return None
        self.display_name = access.display_name
        return access.agent_of

    async def _change_access(
        self, subscription: Subscription, agent_of: frozenset[uuid.UUID]
    ) -> None:
        wanted = channels_for(self.user_id, agent_of)
        await subscription.remove(self.channels - wanted)
        await subscription.add(wanted - self.channels)
        self.channels = wanted
        self.agent_of = agent_of
        await self._send("access.changed", self._access())

    # --- client to server ----------------------------------------------------------------

    async def _receive(self) -> Close | None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            text = message.get("text")
            if text is None:
                await self._error("bad_frame", "Frames are JSON text.")
                continue
            if len(text) > MAX_FRAME_CHARS:
                return Close.MESSAGE_TOO_BIG
            try:
                frame = json.loads(text)
            except ValueError:
                frame = None
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                await self._error("bad_frame", 'Frames are JSON objects {"type", "data"}.')
                continue
            kind = frame["type"]
            if kind == "pong":
                continue
            if kind == "ping":
                await self._send("pong", {})
            elif kind == "typing":
                await self._typing(frame.get("data"))
            else:
                await self._error("unknown_type", f"No frame type {kind[:40]!r}.")

    async def _error(self, code: str, detail: str) -> None:
        await self._send("error", {"code": code, "detail": detail})

    async def _typing(self, data: object) -> None:
        if not isinstance(data, dict):
            await self._error("bad_frame", "typing needs data.conversation_id.")
            return
        internal = data.get("internal", False)
        try:
            conversation_id = uuid.UUID(str(data.get("conversation_id")))
        except ValueError:
            conversation_id = None
        if conversation_id is None or not isinstance(internal, bool):
            await self._error(
                "bad_frame", "typing needs data.conversation_id (and a boolean internal)."
            )
            return
        now = monotonic()
        last = self._typed.get(conversation_id)
        if last is not None and now - last < TYPING_INTERVAL_SECONDS:
            return
        self._remember_typing(conversation_id, now)
        parties = await self._parties_of(conversation_id)
        is_customer = parties is not None and parties.customer_id == self.user_id
        if parties is None or not (is_customer or parties.organization_id in self.agent_of):
            await self._error("not_found", "No such conversation.")
            return
        shown = {
            "conversation_id": str(conversation_id),
            "user_id": str(self.user_id),
            "display_name": self.display_name,
        }
        # Its customer types as the customer (to the agents only), even when also an agent.
        note = internal and not is_customer
        await self.bus.publish(
            org_agents_channel(parties.organization_id),
            {"type": "typing", "data": {**shown, "internal": note}},
        )
        if not is_customer and not note:
            await self.bus.publish(
                user_channel(parties.customer_id), {"type": "typing", "data": shown}
            )

    def _remember_typing(self, conversation_id: uuid.UUID, now: float) -> None:
        if len(self._typed) >= _PARTIES_CACHED:
            self._typed = {
                key: at for key, at in self._typed.items() if now - at < TYPING_INTERVAL_SECONDS
            }
        self._typed[conversation_id] = now

    async def _parties_of(self, conversation_id: uuid.UUID) -> ConversationParties | None:
        cached = self._parties.get(conversation_id)
        if cached is not None:
            self._parties.move_to_end(conversation_id)
            return cached
        async with transaction(self.database, write=False) as session:
            found = await conversation_parties(session, conversation_id)
        if found is not None:
            self._parties[conversation_id] = found
            while len(self._parties) > _PARTIES_CACHED:
                self._parties.popitem(last=False)
        return found
