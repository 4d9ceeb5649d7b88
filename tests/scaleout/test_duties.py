"""Background duties on two workers at once: outbox email, scheduled publishing and shift
reminders each happen exactly once, whichever worker claims the rows."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from contextlib import AsyncExitStack
from datetime import timedelta

from sqlalchemy import func, select

from tests.events.feed_helpers import make_event, make_shift, sign_up
from tests.factories import create_article, create_organization, create_user
from tests.realtime.conftest import organization, person
from tests.scaleout.clients import http_client
from tests.scaleout.conftest import SCALEOUT, Cluster
from townsquare.cms.enums import ArticleStatus, RevisionReason
from townsquare.cms.models import Article, ArticleRevision
from townsquare.db import Database, transaction
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail
from townsquare.events import reminders
from townsquare.events.models import Signup
from townsquare.kit import clock
from townsquare.orgs.enums import MemberRole
from townsquare.worker import signals

pytestmark = SCALEOUT

EMAILS = 500
ARTICLES = 20
IN_FLIGHT = 8


async def _wait_until(what: str, check: object, timeout: float) -> float:
    """Seconds until the coroutine function `check` answers True."""
    assert callable(check)
    started = time.perf_counter()
    while not await check():
        assert time.perf_counter() - started < timeout, f"not done within {timeout} s: {what}"
        await asyncio.sleep(0.2)
    return time.perf_counter() - started


async def test_emails_queued_through_both_processes_are_delivered_once_each(
    cluster: Cluster, shared_db: Database
) -> None:
    owner = await person(shared_db, cluster.settings, display_name="Owner")
    org = await organization(shared_db, {MemberRole.owner: [owner]})
    addresses = [f"invitee{n}.{org.slug}@example.com" for n in range(EMAILS)]
    gate = asyncio.Semaphore(IN_FLIGHT)
    async with AsyncExitStack() as stack:
        clients = [await http_client(stack, cluster, api, owner) for api in cluster.apis]

        async def invite(n: int) -> None:
            async with gate:
                answer = await clients[n % 2].post(
                    f"/orgs/{org.slug}/invitations", json={"email": addresses[n]}
                )
            assert answer.status_code == 201, answer.text

        started = time.perf_counter()
        await asyncio.gather(*(invite(n) for n in range(EMAILS)))
        queued_in = time.perf_counter() - started

    async def all_settled() -> bool:
        async with shared_db.session(write=False) as session:
            unsettled = await session.scalar(
                select(func.count())
                .select_from(OutboxEmail)
                .where(OutboxEmail.to_address.in_(addresses))
                .where(OutboxEmail.status.not_in([EmailStatus.sent, EmailStatus.failed]))
            )
        return unsettled == 0

    delivered_in = await _wait_until("every invitation sent", all_settled, timeout=60)
    async with shared_db.session(write=False) as session:
        statuses = Counter(
            (
                await session.scalars(
                    select(OutboxEmail.status).where(OutboxEmail.to_address.in_(addresses))
                )
            ).all()
        )
    received = Counter(
        address
        for _, recipients in list(cluster.smtp.handler.envelopes)
        for address in recipients
        if address in set(addresses)
    )
    cluster.check_alive()
    print(
        f"\n{EMAILS} invitations queued through A and B in {queued_in:.1f} s, all sent "
        f"{delivered_in:.1f} s later by two workers; SMTP received {sum(received.values())}"
    )
    assert statuses == {EmailStatus.sent: EMAILS}
    assert sorted(received) == sorted(addresses)
    assert set(received.values()) == {1}


async def test_articles_scheduled_for_the_same_second_are_published_once_each(
    cluster: Cluster, shared_db: Database
) -> None:
    editor = await person(shared_db, cluster.settings, display_name="Editor")
    org = await organization(shared_db, {MemberRole.owner: [editor]})
    async with transaction(shared_db) as session:
        articles = [await create_article(session, org, author=editor.user) for _ in range(ARTICLES)]
    publish_at = (clock.now() + timedelta(seconds=10)).replace(microsecond=0)
    async with AsyncExitStack() as stack:
        clients = [await http_client(stack, cluster, api, editor) for api in cluster.apis]
        for n, article in enumerate(articles):
            answer = await clients[n % 2].post(
                f"/orgs/{org.slug}/articles/{article.id}/schedule",
                json={"publish_at": publish_at.isoformat(), "version": article.version},
            )
            assert answer.status_code == 200, answer.text
    ids = [article.id for article in articles]

    async def all_published() -> bool:
        async with shared_db.session(write=False) as session:
            published = await session.scalar(
                select(func.count())
                .select_from(Article)
                .where(Article.id.in_(ids), Article.status == ArticleStatus.published)
            )
        return published == ARTICLES

    # The publishing duty runs every 15 s on each worker.
    waited = await _wait_until("every article published", all_published, timeout=45)
    async with shared_db.session(write=False) as session:
        revisions = Counter(
            (
                await session.scalars(
                    select(ArticleRevision.article_id).where(
                        ArticleRevision.article_id.in_(ids),
                        ArticleRevision.reason == RevisionReason.published,
                    )
                )
            ).all()
        )
        published_at = set(
            (await session.scalars(select(Article.published_at).where(Article.id.in_(ids)))).all()
        )
    cluster.check_alive()
    print(
        f"\n{ARTICLES} articles scheduled for one second published {waited:.1f} s after "
        f"scheduling; publish revisions per article: {sorted(set(revisions.values()))}"
    )
    assert revisions == dict.fromkeys(ids, 1)
    assert len(published_at) == 1


async def test_shift_reminders_are_sent_once_each_by_two_workers(
    cluster: Cluster, shared_db: Database
) -> None:
    volunteers = 50
    async with transaction(shared_db) as session:
        org = await create_organization(session)
        starts = clock.now() + timedelta(hours=2)
        event = await make_event(session, org, starts_at=starts - timedelta(hours=1))
        shift = await make_shift(session, event, starts_at=starts, capacity=volunteers)
        users = [
            await create_user(session, email=f"volunteer{n}.{org.slug}@example.com")
            for n in range(volunteers)
        ]
        for user in users:
            await sign_up(session, shift, user)
        # What a committed change that makes a duty due does: wake every worker now.
        await signals.notify_workers(session, "events.reminders")
    addresses = [user.email for user in users]

    async def all_sent() -> bool:
        async with shared_db.session(write=False) as session:
            sent = await session.scalar(
                select(func.count())
                .select_from(OutboxEmail)
                .where(OutboxEmail.to_address.in_(addresses))
                .where(OutboxEmail.status == EmailStatus.sent)
            )
        return sent == volunteers

    waited = await _wait_until("every reminder sent", all_sent, timeout=60)
    async with shared_db.session(write=False) as session:
        queued = Counter(
            (
                await session.scalars(
                    select(OutboxEmail.to_address).where(
                        OutboxEmail.to_address.in_(addresses),
                        OutboxEmail.template == reminders.TEMPLATE,
                    )
                )
            ).all()
        )
        unreminded = await session.scalar(
            select(func.count())
            .select_from(Signup)
            .where(Signup.shift_id == shift.id, Signup.reminder_sent_at.is_(None))
        )
    wanted = set(addresses)
    received = Counter(
        address
        for _, recipients in list(cluster.smtp.handler.envelopes)
        for address in recipients
        if address in wanted
    )
    cluster.check_alive()
    print(
        f"\n{volunteers} shift reminders queued and sent {waited:.1f} s after the wake-up; "
        f"SMTP received {sum(received.values())}"
    )
    assert queued == dict.fromkeys(addresses, 1)
    assert received == dict.fromkeys(addresses, 1)
    assert unreminded == 0
