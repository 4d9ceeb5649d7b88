"""Identity services and duties below the HTTP layer."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import ModuleType

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import register, unique_email
from tests.conftest import RolledBackDatabase, make_settings
from tests.factories import create_user
from townsquare.auth import duties, passwords, service, sessions
from townsquare.auth.enums import TokenPurpose
from townsquare.auth.errors import InvalidCredentials
from townsquare.auth.models import User, UserSession, UserToken
from townsquare.config import Settings
from townsquare.db import Database
from townsquare.worker.registry import DutyContext, load_duties


async def _count(session: AsyncSession, model: type[UserSession] | type[UserToken]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


class TestRegisterRace:
    async def test_concurrent_registrations_with_one_email(
        self, committed_db: Database, committed_client: httpx.AsyncClient
    ) -> None:
        email = unique_email("race")
        responses = await asyncio.gather(
            *(register(committed_client, email=email.upper() if i % 2 else email) for i in range(6))
        )
        # Every answer is the same (nothing tells a caller the address is taken).
        assert {r.status_code for r in responses} == {202}
        assert len({r.text for r in responses}) == 1
        async with committed_db.session() as check:
            count = await check.scalar(
                select(func.count()).select_from(User).where(User.email == email)
            )
        assert count == 1


class TestAuthenticate:
    async def test_dummy_work_for_unknown_email(
        self, session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[str] = []
        original = passwords.verify_password

        async def counting(s: Settings, password_hash: str, password: str) -> bool:
            calls.append(password_hash[:10])
            verified: bool = await original(s, password_hash, password)
            return verified

        monkeypatch.setattr(passwords, "verify_password", counting)
        with pytest.raises(InvalidCredentials):
            await service.authenticate(
                session, settings, email=unique_email(), password="whatever-password"
            )
        assert calls == ["$argon2id$"]


class TestDuties:
    async def test_registered_with_the_worker(self) -> None:
        names = {d.name for d in load_duties()}
        assert {"auth.delete_expired_sessions", "auth.delete_expired_tokens"} <= names

    async def test_delete_expired_sessions_and_tokens(
        self, session: AsyncSession, db: RolledBackDatabase, clock: ModuleType
    ) -> None:
        settings = make_settings()
        ctx = DutyContext(db=db, settings=settings, worker_id="test")
        user = await create_user(session)
        stale = await sessions.start_session(session, settings, user)
        clock.travel(timedelta(days=5))
        fresh = await sessions.start_session(session, settings, user)
        await service.send_verification(session, settings, user)
        await session.flush()
        assert await _count(session, UserSession) >= 2

        clock.travel(timedelta(days=3))
        assert await duties.delete_expired_sessions(ctx) >= 1
        remaining = set(await session.scalars(select(UserSession.id)))
        assert fresh.record.id in remaining
        assert stale.record.id not in remaining
        assert await duties.delete_expired_tokens(ctx) >= 1
        left = await session.scalar(
            select(func.count())
            .select_from(UserToken)
            .where(UserToken.user_id == user.id, UserToken.purpose == TokenPurpose.verify_email)
        )
        assert left == 0
        assert await duties.delete_expired_tokens(ctx) == 0
