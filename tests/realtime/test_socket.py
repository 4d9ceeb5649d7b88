"""`GET /api/v1/ws` on a real server: handshake, channels, events after commit, typing,
heartbeat re-checks and back-pressure."""

from __future__ import annotations

import json
import socket
import uuid
from contextlib import AsyncExitStack
from typing import Any

import pytest
from sqlalchemy import delete
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from tests.realtime.conftest import (
    OWN_ORIGIN,
    LiveServer,
    MovableClock,
    Person,
    StartServer,
    conversation,
    cookie_for,
    next_frame,
    open_socket,
    organization,
    person,
    settle,
)
from townsquare.auth import sessions as auth_sessions
from townsquare.db import Database, transaction
from townsquare.orgs.enums import MemberRole, Module
from townsquare.orgs.models import Membership
from townsquare.realtime import events
from townsquare.realtime import socket as socket_module
from townsquare.realtime.events import org_agents_channel, user_channel

pytestmark = pytest.mark.committed


async def publish(db: Database, channel: str, type_: str, data: dict[str, Any]) -> None:
    async with transaction(db) as session:
        events.publish(session, channel, type_, data)


async def expect_only_marker(db: Database, ws: ClientConnection, someone: Person) -> None:
    """Nothing else is waiting for `ws`: a marker sent to its user now comes next."""
    marker = uuid.uuid4().hex
    await publish(db, user_channel(someone.id), "test.marker", {"marker": marker})
    frame = await next_frame(ws)
    assert frame == {"type": "test.marker", "data": {"marker": marker}}


async def drain(ws: ClientConnection) -> tuple[int, int | None]:
    """Read until the server closes: how many frames came first, and the close code."""
    frames = 0
    try:
        while True:
            await next_frame(ws)
            frames += 1
    except ConnectionClosed as closed:
        return frames, None if closed.rcvd is None else closed.rcvd.code


async def closed_with(ws: ClientConnection) -> int | None:
    return (await drain(ws))[1]


async def publish_and_roll_back(
    db: Database, channel: str, type_: str, data: dict[str, Any]
) -> None:
    async with transaction(db) as session:
        events.publish(session, channel, type_, data)
        raise RuntimeError("rolled back")


class TestHandshake:
    async def test_ready_once_subscribed(self, committed_db: Database, server: LiveServer) -> None:
        customer = await person(committed_db, server.settings)
        async with connect(
            server.url, additional_headers=cookie_for(server.settings, customer), origin=OWN_ORIGIN
        ) as ws:
            ready = await next_frame(ws)
        assert ready == {
            "type": "ready",
            "data": {
                "user_id": str(customer.id),
                "agent_of": [],
                "heartbeat_seconds": server.settings.WS_HEARTBEAT_SECONDS,
            },
        }

    async def test_foreign_origin_is_refused_before_accepting(
        self, committed_db: Database, server: LiveServer
    ) -> None:
        customer = await person(committed_db, server.settings)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                server.url,
                additional_headers=cookie_for(server.settings, customer),
                origin=Origin("https://evil.example"),
            ):
                pass
        response = refused.value.response
        assert response.status_code == 403
        assert json.loads(response.body)["code"] == "csrf_failed"

    async def test_a_client_without_origin_is_not_a_browser_and_may_connect(
        self, committed_db: Database, server: LiveServer
    ) -> None:
        customer = await person(committed_db, server.settings)
        async with connect(
            server.url, additional_headers=cookie_for(server.settings, customer)
        ) as ws:
            assert (await next_frame(ws))["type"] == "ready"

    @pytest.mark.parametrize("cookie", [None, "not-a-session"])
    async def test_without_a_live_session_closed_4401(
        self, server: LiveServer, cookie: str | None
    ) -> None:
        headers = {} if cookie is None else {"Cookie": f"townsquare_session={cookie}"}
        async with connect(server.url, additional_headers=headers, origin=OWN_ORIGIN) as ws:
            assert await closed_with(ws) == 4401


class TestEvents:
    async def test_published_after_commit_only(
        self, committed_db: Database, server: LiveServer
    ) -> None:
        customer = await person(committed_db, server.settings)
        channel = user_channel(customer.id)
        conversation_id = str(uuid.uuid4())
        async with AsyncExitStack() as stack:
            ws = await open_socket(stack, server, customer)
            await publish(
                committed_db,
                channel,
                "message.created",
                {"conversation_id": conversation_id, "seq": 1},
            )
            with pytest.raises(RuntimeError):
                await publish_and_roll_back(
                    committed_db,
                    channel,
                    "message.created",
                    {"conversation_id": conversation_id, "seq": 2},
                )
            await publish(
                committed_db,
                channel,
                "message.created",
                {"conversation_id": conversation_id, "seq": 3},
            )
            seqs = [(await next_frame(ws))["data"]["seq"] for _ in range(2)]
            await expect_only_marker(committed_db, ws, customer)
        assert seqs == [1, 3]

    async def test_agents_hear_the_inbox_customers_only_their_own(
        self, committed_db: Database, server: LiveServer
    ) -> None:
        settings = server.settings
        agent, owner, editor, customer, elsewhere = [
            await person(committed_db, settings) for _ in range(5)
        ]
        org = await organization(
            committed_db,
            {MemberRole.agent: [agent], MemberRole.owner: [owner], MemberRole.editor: [editor]},
        )
        await organization(
            committed_db, {MemberRole.agent: [elsewhere]}, modules=(Module.cms, Module.events)
        )
        async with AsyncExitStack() as stack:
            sockets = {
                someone.id: await open_socket(stack, server, someone)
                for someone in (agent, owner, editor, customer, elsewhere)
            }
            note = {"conversation_id": str(uuid.uuid4()), "seq": 7, "internal": True}
            await publish(committed_db, org_agents_channel(org.id), "message.created", note)
            for someone in (agent, owner):
                assert (await next_frame(sockets[someone.id]))["data"] == note
            reply = {"conversation_id": note["conversation_id"], "seq": 8}
            await publish(committed_db, user_channel(customer.id), "message.created", reply)
            assert (await next_frame(sockets[customer.id]))["data"] == reply
            for someone in (agent, owner, editor, customer, elsewhere):
                await expect_only_marker(committed_db, sockets[someone.id], someone)

    async def test_ready_names_the_inboxes(
        self, committed_db: Database, server: LiveServer
    ) -> None:
        agent = await person(committed_db, server.settings)
        first = await organization(committed_db, {MemberRole.agent: [agent]})
        second = await organization(committed_db, {MemberRole.admin: [agent]})
        await organization(committed_db, {MemberRole.member: [agent]})
        async with connect(
            server.url, additional_headers=cookie_for(server.settings, agent), origin=OWN_ORIGIN
        ) as ws:
            ready = await next_frame(ws)
        assert ready["data"]["agent_of"] == sorted([str(first.id), str(second.id)])

    async def test_one_event_on_two_channels_arrives_once(
        self, committed_db: Database, server: LiveServer
    ) -> None:
        # An agent who opened a conversation with their own organization hears it twice.
        agent = await person(committed_db, server.settings)
        org = await organization(committed_db, {MemberRole.agent: [agent]})
        message = {"conversation_id": str(uuid.uuid4()), "seq": 1, "body": "hi"}
        updated = {"conversation_id": message["conversation_id"], "status": "open"}
        async with AsyncExitStack() as stack:
            ws = await open_socket(stack, server, agent)
            async with transaction(committed_db) as session:
                for channel in (org_agents_channel(org.id), user_channel(agent.id)):
                    events.publish(session, channel, "message.created", message)
                    events.publish(session, channel, "conversation.updated", updated)
            assert (await next_frame(ws))["data"] == message
            assert (await next_frame(ws))["data"] == updated
            await expect_only_marker(committed_db, ws, agent)

    async def test_the_same_content_again_on_one_channel_is_a_new_event(
        self, committed_db: Database, server: LiveServer
    ) -> None:
        customer = await person(committed_db, server.settings)
        conversation_id = str(uuid.uuid4())
        statuses = ["open", "resolved", "open"]
        async with AsyncExitStack() as stack:
            ws = await open_socket(stack, server, customer)
            for status in statuses:
                await publish(
                    committed_db,
                    user_channel(customer.id),
                    "conversation.updated",
                    {"conversation_id": conversation_id, "status": status},
                )
            seen = [(await next_frame(ws))["data"]["status"] for _ in statuses]
        assert seen == statuses


class TestTyping:
    async def test_routed_by_who_types(
        self, committed_db: Database, server: LiveServer, socket_clock: MovableClock
    ) -> None:
        settings = server.settings
        agent = await person(committed_db, settings, display_name="Agent A")
        colleague = await person(committed_db, settings, display_name="Agent B")
        customer = await person(committed_db, settings, display_name="Customer C")
        other = await person(committed_db, settings, display_name="Customer D")
        org = await organization(committed_db, {MemberRole.agent: [agent, colleague]})
        chat = await conversation(committed_db, org, customer)
        await conversation(committed_db, org, other)
        everyone = (agent, colleague, customer, other)
        async with AsyncExitStack() as stack:
            ws = {someone.id: await open_socket(stack, server, someone) for someone in everyone}

            async def typing(someone: Person, **extra: Any) -> list[dict[str, Any]]:
                data = {"conversation_id": str(chat.id), **extra}
                await ws[someone.id].send(json.dumps({"type": "typing", "data": data}))
                socket_clock.advance(socket_module.TYPING_INTERVAL_SECONDS)
                return await settle(ws[someone.id])

            shown = {"conversation_id": str(chat.id), "display_name": "Agent A"}
            assert await typing(agent) == []
            assert (await next_frame(ws[colleague.id]))["data"] == {
                **shown,
                "user_id": str(agent.id),
                "internal": False,
            }
            assert (await next_frame(ws[customer.id]))["data"] == {
                **shown,
                "user_id": str(agent.id),
            }

            await typing(agent, internal=True)
            assert (await next_frame(ws[colleague.id]))["data"]["internal"] is True

            await typing(customer, internal=True)
            for someone in (agent, colleague):
                assert (await next_frame(ws[someone.id]))["data"] == {
                    "conversation_id": str(chat.id),
                    "user_id": str(customer.id),
                    "display_name": "Customer C",
                    "internal": False,
                }

            refused = await typing(other)
            assert refused == [
                {"type": "error", "data": {"code": "not_found", "detail": "No such conversation."}}
            ]
            for someone in everyone:
                await expect_only_marker(committed_db, ws[someone.id], someone)

    async def test_at_most_one_per_conversation_every_two_seconds(
        self, committed_db: Database, server: LiveServer, socket_clock: MovableClock
    ) -> None:
        agent = await person(committed_db, server.settings)
        colleague = await person(committed_db, server.settings)
        customer = await person(committed_db, server.settings)
        org = await organization(committed_db, {MemberRole.agent: [agent, colleague]})
        first = await conversation(committed_db, org, customer)
        second = await conversation(committed_db, org, customer)
        async with AsyncExitStack() as stack:
            typist = await open_socket(stack, server, agent)
            watcher = await open_socket(stack, server, colleague)

            async def typing(chat_id: uuid.UUID) -> None:
                data = {"conversation_id": str(chat_id)}
                await typist.send(json.dumps({"type": "typing", "data": data}))

            for _ in range(5):
                await typing(first.id)
            await typing(second.id)
            await settle(typist)
            socket_clock.advance(socket_module.TYPING_INTERVAL_SECONDS - 0.1)
            await typing(first.id)
            await settle(typist)
            socket_clock.advance(0.1)
            await typing(first.id)
            await settle(typist)
            heard = [(await next_frame(watcher))["data"]["conversation_id"] for _ in range(3)]
            await expect_only_marker(committed_db, watcher, colleague)
        assert heard == [str(first.id), str(second.id), str(first.id)]

    async def test_bad_frames_answer_an_error_and_keep_the_socket(
        self, committed_db: Database, server: LiveServer
    ) -> None:
        customer = await person(committed_db, server.settings)
        async with AsyncExitStack() as stack:
            ws = await open_socket(stack, server, customer)
            for frame in ["not json", "[1]", '{"type": "shout"}', '{"type": "typing"}']:
                await ws.send(frame)
            await ws.send(b"binary")
            errors = await settle(ws)
        assert [e["data"]["code"] for e in errors] == [
            "bad_frame",
            "bad_frame",
            "unknown_type",
            "bad_frame",
            "bad_frame",
        ]

    async def test_an_oversized_frame_closes_1009(
        self, committed_db: Database, server: LiveServer
    ) -> None:
        customer = await person(committed_db, server.settings)
        async with AsyncExitStack() as stack:
            ws = await open_socket(stack, server, customer)
            await ws.send(json.dumps({"type": "typing", "data": {"x": "y" * 5000}}))
            assert await closed_with(ws) == 1009


class TestHeartbeat:
    async def test_pings_and_closes_4401_once_the_session_ends(
        self, committed_db: Database, start_server: StartServer
    ) -> None:
        server = await start_server(WS_HEARTBEAT_SECONDS=0.2)
        customer = await person(committed_db, server.settings)
        async with AsyncExitStack() as stack:
            ws = await open_socket(stack, server, customer)
            assert (await next_frame(ws, skip=()))["type"] == "ping"
            async with transaction(committed_db) as session:
                await auth_sessions.end_session_by_token(session, customer.token)
            assert await closed_with(ws) == 4401

    async def test_a_removed_membership_drops_the_inbox(
        self, committed_db: Database, start_server: StartServer
    ) -> None:
        server = await start_server(WS_HEARTBEAT_SECONDS=0.2)
        agent = await person(committed_db, server.settings)
        org = await organization(committed_db, {MemberRole.agent: [agent]})
        async with AsyncExitStack() as stack:
            ws = await open_socket(stack, server, agent)
            async with transaction(committed_db) as session:
                await session.execute(delete(Membership).where(Membership.user_id == agent.id))
            changed = await next_frame(ws)
            assert changed["type"] == "access.changed"
            assert changed["data"]["agent_of"] == []
            await publish(committed_db, org_agents_channel(org.id), "message.created", {})
            await expect_only_marker(committed_db, ws, agent)

    async def test_a_new_membership_opens_the_inbox(
        self, committed_db: Database, start_server: StartServer
    ) -> None:
        server = await start_server(WS_HEARTBEAT_SECONDS=0.2)
        agent = await person(committed_db, server.settings)
        org = await organization(committed_db)
        async with AsyncExitStack() as stack:
            ws = await open_socket(stack, server, agent)
            async with transaction(committed_db) as session:
                session.add(
                    Membership(organization_id=org.id, user_id=agent.id, role=MemberRole.agent)
                )
            changed = await next_frame(ws)
            assert changed == {
                "type": "access.changed",
                "data": {
                    "user_id": str(agent.id),
                    "agent_of": [str(org.id)],
                    "heartbeat_seconds": 0.2,
                },
            }
            await publish(committed_db, org_agents_channel(org.id), "message.created", {"n": 1})
            assert (await next_frame(ws))["data"] == {"n": 1}


class TestBackPressure:
    async def test_a_client_that_stops_reading_is_closed_1013(
        self, committed_db: Database, server: LiveServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        customer = await person(committed_db, server.settings)
        reader = await person(committed_db, server.settings)
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", server.port))
        async with AsyncExitStack() as stack:
            well = await open_socket(stack, server, reader)
            monkeypatch.setattr(socket_module, "SEND_QUEUE_SIZE", 8)
            ws = await stack.enter_async_context(
                connect(
                    server.url,
                    sock=slow,
                    additional_headers=cookie_for(server.settings, customer),
                    origin=OWN_ORIGIN,
                    max_queue=1,
                )
            )
            assert (await next_frame(ws))["type"] == "ready"
            sent = 300
            payload = "x" * 64_000
            for n in range(sent):
                # The customer stops reading; a reader elsewhere keeps up and loses nothing.
                async with transaction(committed_db) as session:
                    events.publish(
                        session, user_channel(customer.id), "big", {"n": n, "p": payload}
                    )
                    events.publish(session, user_channel(reader.id), "small", {"n": n})
            received = [(await next_frame(well))["data"]["n"] for _ in range(sent)]
            assert received == list(range(sent))
            got, code = await drain(ws)
        assert code == 1013
        assert got < sent
