"""Live sockets' periodic access re-checks, answered in batches.

Every socket re-checks on its heartbeat that its session still lives and which inboxes
its user may hear. One transaction per socket per heartbeat is 40 transactions a second
for 1,000 sockets (and they compete with requests for the pool); here the re-checks that
come due within `window_seconds` share one transaction of two queries.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State

from townsquare.auth.models import User, UserSession
from townsquare.auth.sessions import is_live
from townsquare.config import Settings
from townsquare.db import SessionSource, transaction
from townsquare.kit.tokens import hash_token
from townsquare.realtime.access import agent_organizations_of

WINDOW_SECONDS = 1.0
BATCH_LIMIT = 500
"""Tokens per query (the `IN` list); a bigger backlog takes several queries."""


@dataclass(frozen=True)
class Access:
    """What a live session may hear now."""

    session_id: uuid.UUID
    display_name: str
    agent_of: frozenset[uuid.UUID]


class AccessRechecks:
    """Collects re-checks for `window_seconds`, then answers all of them at once."""

    def __init__(
        self, database: SessionSource, settings: Settings, *, window_seconds: float = WINDOW_SECONDS
    ) -> None:
        self.database = database
        self.settings = settings
        self.window_seconds = window_seconds
        self._waiting: dict[str, list[asyncio.Future[Access | None]]] = defaultdict(list)
        self._flusher: asyncio.Task[None] | None = None

    async def check(self, token: str) -> Access | None:
        """The session's access now, or None when the session ended (or never was)."""
        if not token or len(token) > 256:
            return None
        future: asyncio.Future[Access | None] = asyncio.get_running_loop().create_future()
        self._waiting[hash_token(token)].append(future)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())
        return await future

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with suppress(asyncio.CancelledError):
                await self._flusher
        self._fail(self._take(), ConnectionAbortedError("live events are shutting down"))

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.window_seconds)
        while self._waiting:
            due = self._take()
            try:
                found = await self._lookup(list(due))
            except Exception as exc:
                self._fail(due, exc)
                continue
            for token_hash, futures in due.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(token_hash))

    def _take(self) -> dict[str, list[asyncio.Future[Access | None]]]:
        due = dict(self._waiting)
        self._waiting.clear()
        return due

    @staticmethod
    def _fail(due: dict[str, list[asyncio.Future[Access | None]]], exc: BaseException) -> None:
        for futures in due.values():
            for future in futures:
                if not future.done():
                    future.set_exception(exc)

    async def _lookup(self, token_hashes: list[str]) -> dict[str, Access]:
        found: dict[str, Access] = {}
        async with transaction(self.database, write=False) as session:
            for start in range(0, len(token_hashes), BATCH_LIMIT):
                chunk = token_hashes[start : start + BATCH_LIMIT]
                found.update(await self._lookup_chunk(session, chunk))
        return found

    async def _lookup_chunk(
        self, session: AsyncSession, token_hashes: list[str]
    ) -> dict[str, Access]:
        rows = await session.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash.in_(token_hashes))
        )
        live = [
            (record, user)
            for record, user in rows
            if user.is_active and is_live(self.settings, record)
        ]
        inboxes = await agent_organizations_of(session, {user.id for _, user in live})
        return {
            record.token_hash: Access(
                session_id=record.id,
                display_name=user.display_name,
                agent_of=inboxes.get(user.id, frozenset()),
            )
            for record, user in live
        }


def rechecks_of(state: State) -> AccessRechecks:
    """The app's batcher (`app.state.live_rechecks`), made on first use."""
    found: AccessRechecks | None = getattr(state, "live_rechecks", None)
    if found is None:
        settings: Settings = state.settings
        # A short heartbeat (tests, small deployments) keeps its re-checks prompt.
        window = min(WINDOW_SECONDS, settings.WS_HEARTBEAT_SECONDS / 4)
        found = AccessRechecks(state.database, settings, window_seconds=window)
        state.live_rechecks = found
    return found


async def close_rechecks(state: State) -> None:
    found: AccessRechecks | None = getattr(state, "live_rechecks", None)
    if found is not None:
        await found.close()
        state.live_rechecks = None
