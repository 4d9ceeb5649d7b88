"""The people and conversations of the chat benchmark (bench/chat_ws.py).

One owner registers over HTTP (the real sign-up), has the email marked verified in the
database, signs in (`POST /auth/login`) and creates the organization (the support module
is on by default). Agents, customers and idle visitors go straight into the database with
the owner's password hash (argon2 for a thousand sign-ups would only slow the set-up
down), each with one session row: the cookie token is random, the table keeps its
SHA-256, the CSRF token is derived from it the way Townsquare derives it. Each customer
then opens a conversation over HTTP (`POST /orgs/{org}/conversations`), so every
conversation starts as the real path makes it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx

import cms_data
from townsquare.auth.sessions import csrf_token_for
from townsquare.kit.tokens import hash_token, new_token
from townsquare.models import import_all_models

HOST = "127.0.0.1"
SESSION_COOKIE = "townsquare_session"
CSRF_COOKIE = "csrftoken"
OWNER = {
    "email": "bench-chat-owner@example.org",
    "password": "bench chat owner " + "x" * 16,
    "display_name": "Bench Owner",
}
ORG_NAME = "Bench Chat"
SESSION_DAYS = 2


@dataclass
class Person:
    """A signed-in user of the benchmark and the headers that carry their session."""

    kind: str  # "agent", "customer" or "visitor"
    index: int
    user_id: str
    display_name: str
    token: str
    csrf: str
    conversation_id: str | None = None

    @property
    def cookie(self) -> str:
        return f"{SESSION_COOKIE}={self.token}; {CSRF_COOKIE}={self.csrf}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": self.cookie, "X-CSRF-Token": self.csrf}


@dataclass
class Cast:
    org_slug: str
    org_id: str
    agents: list[Person] = field(default_factory=list)
    customers: list[Person] = field(default_factory=list)
    visitors: list[Person] = field(default_factory=list)

    @property
    def conversations(self) -> list[str]:
        return [c.conversation_id for c in self.customers if c.conversation_id]


def _check(response: httpx.Response, expected: int, what: str) -> dict[str, Any]:
    if response.status_code != expected:
        raise SystemExit(f"{what} answered {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json() if response.content else {}
    return body


async def _register_owner(base_url: str, target: cms_data.Target) -> tuple[str, str]:
    """The owner signs up over HTTP, gets verified in the database, creates the org."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60, cookies=_NoCookies()) as client:
        answer = await client.post("/api/v1/auth/register", json=OWNER)
        # 202 (a link is emailed, nobody signed in) today; 201 signed in before.
        _check(answer, 201 if answer.status_code == 201 else 202, "register")
        conn = await asyncpg.connect(target.dsn, timeout=10)
        try:
            await conn.execute("UPDATE users SET email_verified_at = now()")
        finally:
            await conn.close()
        login = {k: OWNER[k] for k in ("email", "password")}
        answer = await client.post("/api/v1/auth/login", json=login)
        _check(answer, 200, "login")
        # The cookies are Secure (production): httpx would not send them over http.
        token, csrf = answer.cookies[SESSION_COOKIE], answer.cookies[CSRF_COOKIE]
        owner = {"Cookie": f"{SESSION_COOKIE}={token}; {CSRF_COOKIE}={csrf}", "X-CSRF-Token": csrf}
        answer = await client.post("/api/v1/orgs", json={"name": ORG_NAME}, headers=owner)
        org = _check(answer, 201, "creating the org")
        answer = await client.get(f"/api/v1/orgs/{org['slug']}/modules", headers=owner)
        modules = _check(answer, 200, "reading the org's modules")
        if "support" not in str(modules):
            raise SystemExit(f"the support module is off in the new org: {modules}")
    return str(org["slug"]), str(org["id"])


def _people(kind: str, count: int, secret_key: str) -> list[Person]:
    settings: Any = SimpleNamespace(SECRET_KEY=secret_key)
    people = []
    for index in range(count):
        token = new_token(32)
        people.append(
            Person(
                kind=kind,
                index=index,
                user_id=str(uuid.uuid4()),
                display_name=f"Bench {kind.title()} {index:03d}",
                token=token,
                csrf=csrf_token_for(settings, hash_token(token)),
            )
        )
    return people


async def _insert_people(target: cms_data.Target, cast: Cast) -> None:
    import_all_models()  # cms_data fills the columns from the models' metadata
    now = datetime.now(UTC)
    everyone = [*cast.agents, *cast.customers, *cast.visitors]
    conn = await asyncpg.connect(target.dsn, timeout=10)
    try:
        password_hash = await conn.fetchval(
            "SELECT password_hash FROM users WHERE email = $1", OWNER["email"]
        )
        users = [
            {
                "id": uuid.UUID(p.user_id),
                "email": f"bench-{p.kind}-{p.index:04d}@example.org",
                "display_name": p.display_name,
                "timezone": "UTC",
                "password_hash": password_hash,
                "is_staff": False,
                "is_active": True,
                "email_verified_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for p in everyone
        ]
        sessions = [
            {
                "id": uuid.uuid4(),
                "user_id": uuid.UUID(p.user_id),
                "token_hash": hash_token(p.token),
                "user_agent": "bench/chat_ws.py",
                "ip": HOST,
                "last_seen_at": now,
                "expires_at": now + timedelta(days=SESSION_DAYS),
                "created_at": now,
                "updated_at": now,
            }
            for p in everyone
        ]
        memberships = [
            {
                "id": uuid.uuid4(),
                "organization_id": uuid.UUID(cast.org_id),
                "user_id": uuid.UUID(p.user_id),
                "role": "agent",
                "created_at": now,
                "updated_at": now,
            }
            for p in cast.agents
        ]
        async with conn.transaction():
            await cms_data._copy(conn, "users", users)
            await cms_data._copy(conn, "user_sessions", sessions)
            await cms_data._copy(conn, "memberships", memberships)
    finally:
        await conn.close()


async def _open_conversations(base_url: str, cast: Cast, concurrency: int = 8) -> None:
    """Each customer opens one conversation through the API (seq 1 is its first message)."""
    gate = asyncio.Semaphore(concurrency)
    path = f"/api/v1/orgs/{cast.org_slug}/conversations"

    async def open_one(client: httpx.AsyncClient, customer: Person) -> None:
        async with gate:
            answer = await client.post(
                path,
                json={"subject": f"Order {customer.index:04d}", "body": "Hello, I need help."},
                headers=customer.headers,
            )
        customer.conversation_id = str(_check(answer, 201, "opening a conversation")["id"])

    async with httpx.AsyncClient(base_url=base_url, timeout=60, cookies=_NoCookies()) as client:
        await asyncio.gather(*(open_one(client, c) for c in cast.customers))


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: every request carries exactly its person's cookie."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def no_cookies() -> httpx.Cookies:
    return _NoCookies()


async def make_cast(
    base_url: str,
    target: cms_data.Target,
    *,
    secret_key: str,
    agents: int,
    customers: int,
    visitors: int,
) -> Cast:
    """Owner and org over HTTP, people in the database, conversations over HTTP."""
    slug, org_id = await _register_owner(base_url, target)
    cast = Cast(slug, org_id)
    cast.agents = _people("agent", agents, secret_key)
    cast.customers = _people("customer", customers, secret_key)
    cast.visitors = _people("visitor", visitors, secret_key)
    await _insert_people(target, cast)
    await _open_conversations(base_url, cast)
    return cast
