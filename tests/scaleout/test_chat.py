"""Chat across processes: a message sent through one API process reaches live sockets on
the other through the Redis bus, in order, within a second."""

from __future__ import annotations

import statistics
import time
from contextlib import AsyncExitStack

from tests.realtime.conftest import conversation, organization, person
from tests.scaleout.clients import http_client, next_message, open_socket
from tests.scaleout.conftest import SCALEOUT, Cluster
from townsquare.db import Database
from townsquare.orgs.enums import MemberRole

pytestmark = SCALEOUT

MESSAGES_EACH_WAY = 25


async def test_messages_sent_through_one_process_reach_sockets_on_the_other_in_order(
    cluster: Cluster, shared_db: Database
) -> None:
    customer = await person(shared_db, cluster.settings, display_name="Customer")
    agent = await person(shared_db, cluster.settings, display_name="Agent")
    org = await organization(shared_db, {MemberRole.owner: [agent]})
    chat = await conversation(shared_db, org, customer)
    path = f"/orgs/{org.slug}/conversations/{chat.id}/messages"
    latencies: list[float] = []
    async with AsyncExitStack() as stack:
        # The customer listens on B and writes through A; the agent the other way round.
        sockets = {
            "a": await open_socket(stack, cluster, cluster.a, agent),
            "b": await open_socket(stack, cluster, cluster.b, customer),
        }
        senders = {
            "a": await http_client(stack, cluster, cluster.a, customer),
            "b": await http_client(stack, cluster, cluster.b, agent),
        }
        sent_seqs: list[int] = []
        received: dict[str, list[int]] = {"a": [], "b": []}
        for n in range(2 * MESSAGES_EACH_WAY):
            through, other = ("a", "b") if n % 2 == 0 else ("b", "a")
            started = time.perf_counter()
            answer = await senders[through].post(path, json={"body": f"{through}{n}"})
            assert answer.status_code == 201, answer.text
            sent_seqs.append(answer.json()["seq"])
            for listening_on in (other, through):
                message = await next_message(sockets[listening_on])
                if listening_on == other:
                    latencies.append(time.perf_counter() - started)
                assert message["body"] == f"{through}{n}"
                received[listening_on].append(message["seq"])
        assert received["a"] == received["b"] == sent_seqs == sorted(sent_seqs)
    cluster.check_alive()
    p50 = statistics.median(latencies)
    worst = max(latencies)
    print(
        f"\nchat across processes: {len(latencies)} messages, send-to-deliver "
        f"p50 {p50 * 1000:.1f} ms, max {worst * 1000:.1f} ms"
    )
    assert worst < 1.0
