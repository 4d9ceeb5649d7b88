"""`GET /api/v1/ws`: live events of the support chat over a WebSocket.

Connecting
    Open `wss://<host>/api/v1/ws` from the signed-in browser: the session cookie
    authenticates it, like any request. A handshake whose `Origin` is not the public URL's
    or one of `ALLOWED_ORIGINS` is refused with HTTP 403 (a problem body with code
    `csrf_failed`) and never accepted; a client without an `Origin` (not a browser) is
    let through. Without a live session the socket is accepted and closed with 4401.

Frames
    Every frame is a JSON object `{"type": ..., "data": {...}}`, as text.

    Server to client:
    - `ready` once the socket is subscribed: `{"user_id", "agent_of": [organization
      ids whose inbox the user works], "heartbeat_seconds"}`.
    - `message.created` (with `conversation_id` and `seq`), `conversation.updated`,
      `conversation.read`: as the support chat publishes them, after their commit. A user
      hears their own conversations as a customer (never internal notes) and, as an agent
      (role with `support:inbox`, support module on), every conversation of the
      organization, notes included.
    - `typing`: `{"conversation_id", "user_id", "display_name"}`, plus `"internal"` for
      agents (true while an agent writes a note; customers never hear those). Never your
      own.
    - `ping` every `heartbeat_seconds` (setting `WS_HEARTBEAT_SECONDS`, default 25).
      At each one the server re-checks the session (ended or expired: closed with 4401)
      and recomputes the organizations; when they change it sends `access.changed` (same
      data as `ready`) and from then on only what the new access allows.
    - `resync`: events may have been lost (the server's link to Redis broke); fetch as
      after a reconnect, below.
    - `pong` answering a client `ping`; `error` `{"code", "detail"}` for a frame it
      could not use (`bad_frame`, `unknown_type`, `not_found`).

    Client to server:
    - `{"type": "typing", "data": {"conversation_id": "...", "internal": false}}` while
      the user types, in a conversation they are the customer of or an agent of its
      organization. At most one per conversation every 2 seconds is passed on; never
      stored; a customer's reaches only the agents, an agent's reaches the agents and,
      unless `internal` (a note), the customer.
    - `{"type": "ping"}` (the server answers `pong`) and `{"type": "pong"}` (optional).
    Frames over 4096 characters close the socket with 1009.

Close codes
    4401 not signed in or the session ended; 1013 the client fell too far behind (the
    server stops rather than buffer without end; reconnect); 1011 server error; 1012
    server restarting. After any close, reconnect with backoff and follow the recipe.

Reconnecting without losing anything
    Events are not replayed; the REST API is the record, and every message has a `seq`
    (1, 2, 3... per conversation, no gaps). So:
    1. Connect and wait for `ready`: from then on every new event reaches the socket.
    2. For each conversation on screen, fetch the messages after the last `seq` you hold
       (`GET .../conversations/{id}/messages?after_seq=N`, page until done), and the
       conversation lists you show.
    3. Apply the events that arrived meanwhile and from now on, dropping any message
       whose `seq` you already hold (keep messages ordered by `seq`).
    Do the same on `resync` (step 2 and 3, the socket stays open).
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from townsquare.auth.deps import ForeignOrigin, authenticate_handshake
from townsquare.config import Settings
from townsquare.db import SessionSource, transaction
from townsquare.errors import problem
from townsquare.realtime.access import agent_organizations
from townsquare.realtime.bus import Bus, get_bus
from townsquare.realtime.rechecks import rechecks_of
from townsquare.realtime.socket import Close, LiveSocket, close_socket

router = APIRouter(tags=["live events"])


@router.websocket("/ws")
async def live_events(websocket: WebSocket) -> None:
    settings: Settings = websocket.app.state.settings
    database: SessionSource = websocket.app.state.database
    try:
        async with transaction(database, write=False) as session:
            auth = await authenticate_handshake(
                session,
                settings,
                cookies=websocket.cookies,
                origin=websocket.headers.get("origin"),
            )
            agent_of = (
                frozenset() if auth is None else await agent_organizations(session, auth.user.id)
            )
    except ForeignOrigin as exc:
        await _refuse(websocket, exc)
        return
    await websocket.accept()
    if auth is None:
        await close_socket(websocket, Close.NOT_AUTHENTICATED)
        return
    live = LiveSocket(
        websocket,
        settings=settings,
        database=database,
        bus=bus_of(websocket),
        auth=auth,
        token=websocket.cookies.get(settings.SESSION_COOKIE_NAME, ""),
        agent_of=agent_of,
        rechecks=rechecks_of(websocket.app.state),
    )
    await live.run()


def bus_of(websocket: WebSocket) -> Bus:
    """The app's own bus when it has one (`app.state.bus`), else the process's."""
    bus: Bus | None = getattr(websocket.app.state, "bus", None)
    return bus if bus is not None else get_bus()


async def _refuse(websocket: WebSocket, error: ForeignOrigin) -> None:
    """Refuse the handshake with HTTP 403 (the same problem body as HTTP requests get)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        body = problem(error.status, error.code, error.title, error.detail)
        await websocket.send_denial_response(body)
    else:
        await websocket.close(code=4403)
