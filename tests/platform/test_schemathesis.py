"""Schemathesis against the app's OpenAPI, in-process (QUALITY bar 12).

Two groups:

1. `test_signed_in_fuzz`: every operation of the document, fuzzed by schemathesis (its
   examples, coverage and fuzzing phases, positive and negative data, with hostile strings
   mixed into every string parameter and body field) as a signed-in staff user who owns an
   organization. Each answer must not be a 5xx, must conform to the operation's documented
   schema (problem+json for every error) and content type, and must not say the caller is
   signed out or failed CSRF (the fuzz would otherwise only be exercising the 401 path).
   `test_nul_in_a_path_parameter_is_refused_cleanly` adds what schemathesis never
   generates: NUL in a path parameter.
2. `TestAnonymous`: every operation that needs a session, listed from the document, refuses
   an anonymous caller (and a made-up session cookie) with 401 `not_authenticated`; the few
   public operations are named here and must exist and answer anonymously.

`TestFindings` pins down what the fuzz found.

The fuzzed app runs inside schemathesis' ASGI transport, on an event loop in another thread,
so it cannot share the tests' rolled-back connection: it gets its own `Database` on the test
database (SQLite file or `TOWNSQUARE_TEST_DATABASE_URL`), whose schema the `engine` fixture
created. Its requests really commit; every row the module added is deleted at the end.
Each operation gets a fresh user, organization, article, category, tag, member, invitation
and spare session (`actor`), so an earlier operation (logout, deleting the organization,
turning a module off) cannot blunt a later one. Generated path ids are mostly replaced by
these real ones so that requests reach the code behind the 404s.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import CaseMetadata
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from tests.conftest import _client_for, make_settings
from tests.factories import add_member, create_organization, create_user, sign_in
from townsquare.auth import sessions as auth_sessions
from townsquare.auth.deps import CSRF_HEADER
from townsquare.auth.models import User
from townsquare.cms import publishing as cms_publishing
from townsquare.cms import service as cms_service
from townsquare.cms import taxonomy as cms_taxonomy
from townsquare.db import Base, Database, transaction
from townsquare.errors import Conflict, problem
from townsquare.events import events as events_service
from townsquare.events import shifts as events_shifts
from townsquare.events import signups as events_signups
from townsquare.events.enums import EventStatus
from townsquare.kit import clock
from townsquare.kit.tokens import hash_token, new_token
from townsquare.main import create_app
from townsquare.media.enums import MediaStatus
from townsquare.media.models import MediaItem
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Invitation, Organization
from townsquare.storage.base import stream_bytes
from townsquare.storage.factory import create_storage
from townsquare.support import canned as support_canned
from townsquare.support import conversations as support_conversations
from townsquare.support.context import SupportCaller

# Rate limits off: the fuzz signs in and registers far more often than any person would.
FUZZ_SETTINGS = make_settings(RATE_LIMIT_ENABLED=False)
FUZZ_APP = create_app(FUZZ_SETTINGS)
DOCUMENT: dict[str, Any] = FUZZ_APP.openapi()
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGM4wcUFAAJ6AN1nJ0J9AAAAAElFTkSuQmCC"
)

# Strings that have broken web apps before, mixed into every top-level string parameter and
# body field (in positive cases when the field's schema allows them, else in negative ones):
# NUL (PostgreSQL refuses it in text), control and bidi characters, LIKE wildcards, markup,
# astral and case-changing characters, a path.
HOSTILE_STRINGS = [
    "nul\x00byte",
    "\x00",
    "line\r\nbreak",
    "tab\tand\x1bescape",
    "\u202eright-to-left",
    "\ufeffbom",
    "%_\\",
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "\U0001d518\U0001d52b\U0001d526 \U0001f389",
    "\u0130stanbul \u00df",
    "../../etc/passwd",
]


def _takes_strings(schema: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return _takes_strings(_resolve(schema))
    options = schema.get("anyOf", [schema])
    return any(option.get("type") == "string" for option in options)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    name = schema["$ref"].rsplit("/", 1)[-1]
    resolved: dict[str, Any] = DOCUMENT["components"]["schemas"][name]
    return resolved


def _hostile_bindings() -> dict[str, dict[str, Any]]:
    """A dictionary binding for every string parameter and top-level string body field."""
    keys: set[str] = set()
    for path_item in DOCUMENT["paths"].values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                if _takes_strings(parameter["schema"]):
                    keys.add(f"{parameter['in']}.{parameter['name']}")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                body_schema = body["schema"]
                if "$ref" in body_schema:
                    body_schema = _resolve(body_schema)
                for name, field_schema in body_schema.get("properties", {}).items():
                    if _takes_strings(field_schema):
                        keys.add(f"body.{name}")
    return {key: {"dictionary": "hostile", "probability": 0.25} for key in sorted(keys)}


FUZZ_CONFIG = schemathesis.Config.from_dict(
    {
        "dictionaries": {"hostile": {"values": HOSTILE_STRINGS}},
        "parameters": _hostile_bindings(),
    }
)

schema = schemathesis.openapi.from_dict(DOCUMENT, config=FUZZ_CONFIG)
schema.app = FUZZ_APP  # requests go to the app in-process, like `from_asgi` sets it up

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


# --- the signed-in actor of one fuzzed operation -------------------------------------------

# Body fields that name other rows: filled with the actor's rows, like the path ids.
BODY_REFERENCES = {
    "category_id": "category_id",
    "parent_id": "category_id",
    "member_id": "member_id",
    "tag_ids": "tag_ids",
    "version": "version",
    "featured_media_id": "media_id",
    "assignee_id": "user_id",
}


@dataclass
class Actor:
    """A staff user who owns an organization with some content, signed in with a session."""

    session_token: str
    csrf_token: str
    real: dict[str, Any]

    @property
    def cookies(self) -> dict[str, str]:
        return {FUZZ_SETTINGS.SESSION_COOKIE_NAME: self.session_token}

    @property
    def headers(self) -> dict[str, str]:
        return {CSRF_HEADER: self.csrf_token}

    def aim(self, case: schemathesis.Case[Any]) -> None:
        """Point the case at the actor's rows: generated slugs and ids would nearly always be
        404 before any of the code behind them runs. Values schemathesis made invalid on
        purpose stay, and one positive case in five keeps its generated ids (unknown ids)."""
        meta: CaseMetadata | None = case.meta
        mutated_parameter = meta.phase.data.parameter if meta is not None else None
        if meta is not None and meta.generation.mode.is_positive:
            fingerprint = repr((case.path_parameters, case.query, case.body)).encode()
            if zlib.crc32(fingerprint) % 5 == 0:
                return
        hostile = {
            (str(draw.parameter_location), draw.parameter_name)
            for draw in (meta.dictionary_draws if meta is not None else ())
        }
        path_negative = _is_negative(meta, "path")
        for name in list(case.path_parameters or {}):
            if name not in self.real or ("path", name) in hostile:
                continue
            if path_negative and mutated_parameter in (None, name):
                continue
            case.path_parameters[name] = self.real[name]
        if isinstance(case.body, dict) and not _is_negative(meta, "body"):
            for name, key in BODY_REFERENCES.items():
                if name in case.body and ("body", name) not in hostile:
                    case.body[name] = self.real[key]


def _is_negative(meta: CaseMetadata | None, location: str) -> bool:
    if meta is None:
        return False
    component = meta.components.get(location)  # type: ignore[call-overload]
    return component is not None and component.mode.is_negative


TableKeys = dict[str, set[tuple[Any, ...]]]


async def _table_keys(connection: AsyncConnection) -> TableKeys:
    keys: TableKeys = {}
    for table in Base.metadata.sorted_tables:
        rows = await connection.execute(select(*table.primary_key.columns))
        keys[table.name] = {tuple(row) for row in rows}
    return keys


async def _delete_rows_added_since(connection: AsyncConnection, before: TableKeys) -> None:
    for table in reversed(Base.metadata.sorted_tables):
        columns = list(table.primary_key.columns)
        kept = before[table.name]
        statement = delete(table)
        if kept:
            statement = statement.where(tuple_(*columns).not_in(sorted(kept, key=repr)))
        await connection.execute(statement)


@pytest.fixture(scope="module")
async def fuzz_database(engine: AsyncEngine) -> AsyncIterator[Database]:
    """The database the fuzzed app writes to; what the module added is deleted afterwards."""
    database = Database(FUZZ_SETTINGS)
    async with database.engine.connect() as connection:
        before = await _table_keys(connection)
    try:
        yield database
    finally:
        async with database.engine.begin() as connection:
            await _delete_rows_added_since(connection, before)
        await database.dispose()


async def _arrange_actor(session: AsyncSession) -> Actor:
    user = await create_user(session, is_staff=True, display_name="Fuzz Owner")
    # An admin, so that ownership transfer, role changes and removal have a real target.
    colleague = await create_user(session, display_name="Fuzz Admin")
    org = await create_organization(session)
    ctx = OrgContext(
        org=org, user=user, membership=await add_member(session, org, user, MemberRole.owner)
    )
    member = await add_member(session, org, colleague, MemberRole.admin)
    issued = await auth_sessions.start_session(session, FUZZ_SETTINGS, user, user_agent="fuzz")
    spare = await auth_sessions.start_session(session, FUZZ_SETTINGS, user, user_agent="spare")
    category = await cms_taxonomy.create_category(session, ctx, name="News")
    tag = await cms_taxonomy.create_tag(session, ctx, name="Town hall")
    articles = [
        await cms_service.create_article(
            session,
            ctx,
            title=title,
            slug=None,
            excerpt="Stalls on the square.",
            body="<p>Stalls on the <em>square</em>.</p>",
            category_id=category.id,
            featured_media_id=None,
            settings=FUZZ_SETTINGS,
        )
        for title in ("Market day", "Town fair")
    ]
    # The draft is the target of ids; the published one of slugs (public reads included).
    article, published = articles
    await cms_publishing.publish_article(
        session, ctx, published.id, expected_version=published.version, settings=FUZZ_SETTINGS
    )
    token = new_token(32)
    invitation = Invitation(
        organization_id=org.id,
        email=f"invitee-{uuid.uuid4().hex[:8]}@example.com",
        role=MemberRole.editor,
        token_hash=hash_token(token),
        expires_at=clock.now() + timedelta(days=7),
        invited_by_id=user.id,
    )
    session.add(invitation)
    media, upload = await _arrange_media(session, org, user)
    conversation, _ = await support_conversations.open_conversation(
        session,
        SupportCaller.of(ctx),
        subject="Parking",
        body="Where do I park?",
        client_msg_id=None,
        settings=FUZZ_SETTINGS,
    )
    canned = await support_canned.create_canned(session, ctx, short_code="parking", text="Lot B.")
    starts_at = clock.now() + timedelta(days=30)
    event = await events_service.create_event(
        session,
        ctx,
        title="Fair",
        description="<p>Stalls</p>",
        location="Square",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=8),
        timezone="Europe/Paris",
        status=EventStatus.published,
    )
    (shift,) = await events_shifts.create_shifts(
        session,
        ctx,
        event.id,
        [
            events_shifts.ShiftSpec(
                title="Bar",
                description="",
                location=None,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(hours=2),
                capacity=3,
            )
        ],
    )
    signup = await events_signups.sign_up(
        session, ctx, event.id, shift.id, waitlist_if_full=False, settings=FUZZ_SETTINGS
    )
    await session.flush()
    real = {
        "org": org.slug,
        "member_id": str(member.id),
        "user_id": str(colleague.id),
        "session_id": str(spare.record.id),
        "article_id": str(article.id),
        "slug": published.slug,
        "number": "1",
        "category_id": str(category.id),
        "tag_id": str(tag.id),
        "tag_ids": [str(tag.id)],
        "invitation_id": str(invitation.id),
        "token": token,
        "version": 1,
        "media_id": str(media.id),
        "upload_id": str(upload.id),
        "conversation_id": str(conversation.id),
        "canned_id": str(canned.id),
        "event_id": str(event.id),
        "shift_id": str(shift.id),
        "signup_id": str(signup.signup.id),
    }
    return Actor(issued.token, issued.csrf_token, real)


async def _arrange_media(
    session: AsyncSession, org: Organization, user: User
) -> tuple[MediaItem, MediaItem]:
    """A stored image of the library, and a direct upload still waiting for its bytes."""
    data = PNG_1X1
    key = f"{org.id}/{uuid.uuid4().hex}.png"
    storage = create_storage(FUZZ_SETTINGS)
    try:
        await storage.put(key, stream_bytes(data), content_type="image/png")
    finally:
        await storage.close()
    common = {"organization_id": org.id, "uploaded_by_id": user.id, "content_type": "image/png"}
    media = MediaItem(
        status=MediaStatus.ready,
        storage_key=key,
        filename="poster.png",
        size=len(data),
        width=1,
        height=1,
        alt="A poster",
        title="Poster",
        **common,
    )
    upload = MediaItem(
        status=MediaStatus.pending,
        storage_key=f"{org.id}/{uuid.uuid4().hex}.png",
        filename="flyer.png",
        size=len(data),
        upload_expires_at=clock.now() + timedelta(hours=1),
        **common,
    )
    session.add_all([media, upload])
    return media, upload


@pytest.fixture
async def actor(fuzz_database: Database) -> Actor:
    """A fresh actor per fuzzed operation (shared by that operation's examples)."""
    async with transaction(fuzz_database) as session:
        return await _arrange_actor(session)


# --- 1. signed-in fuzzing of every operation ------------------------------------------------


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    # The actor is shared by an operation's examples on purpose, API inputs are large and
    # requests are slow next to pure functions: none of the health checks fits here.
    suppress_health_check=list(HealthCheck),
)
def test_signed_in_fuzz(case: schemathesis.Case[Any], actor: Actor) -> None:
    actor.aim(case)
    response = case.call_and_validate(headers=actor.headers, cookies=actor.cookies, checks=CHECKS)
    if response.status_code in (401, 403):
        code = response.json()["code"]  # a problem+json body: checked above
        # No operation ends the actor's session (logout leaves later logouts a 204), so a
        # 401 or a CSRF refusal means the fuzz is no longer testing what it claims to,
        # unless schemathesis withheld or mangled the documented cookie or CSRF header.
        assert code not in {"not_authenticated", "csrf_failed"} - _withheld(case), (
            f"{case.operation.label} answered {response.status_code} {code} to a signed-in caller"
        )


def _withheld(case: schemathesis.Case[Any]) -> set[str]:
    """The refusals a case earns by leaving out or spoiling the session cookie (401) or the
    `X-CSRF-Token` header (403), which the document lists as the operation's parameters."""
    meta: CaseMetadata | None = case.meta
    if meta is None:
        return set()
    mutated = getattr(meta.phase.data, "parameter", None)
    earned = set()
    if mutated == CSRF_HEADER or _is_negative(meta, "header"):
        earned.add("csrf_failed")
    if mutated == FUZZ_SETTINGS.SESSION_COOKIE_NAME or _is_negative(meta, "cookie"):
        earned.add("not_authenticated")
    return earned


# --- 2. anonymous callers ---------------------------------------------------------------------

PUBLIC_PREFIX = "/api/v1/public/"
PUBLIC_OPERATIONS = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/request-password-reset"),
    ("GET", "/api/v1/auth/validate-reset-token"),
    ("POST", "/api/v1/auth/reset-password"),
    ("POST", "/api/v1/auth/verify-email"),
    ("GET", "/api/v1/invitations/{token}"),
    # Signing out without a session is a no-op that still clears the cookies (a browser
    # whose session expired must be able to sign out); it reads and changes nothing.
    ("POST", "/api/v1/auth/logout"),
    # Calendar apps cannot sign in: the feed's secret token is its credential (an unknown
    # or replaced one answers 404 calendar_feed_not_found).
    ("GET", "/api/v1/me/shifts.ics"),
}


def _is_public(method: str, path: str) -> bool:
    return path.startswith(PUBLIC_PREFIX) or (method, path) in PUBLIC_OPERATIONS


PROTECTED = [
    pytest.param(m, p, op, id=f"{m} {p}") for m, p, op in _operations() if not _is_public(m, p)
]
PUBLIC = [pytest.param(m, p, op, id=f"{m} {p}") for m, p, op in _operations() if _is_public(m, p)]


@pytest.fixture(scope="module")
async def anonymous(fuzz_database: Database) -> Actor:
    """Real rows behind every path parameter, so that a missing auth check would show up as
    a success instead of hiding behind a 404. Nobody signs in with its session."""
    async with transaction(fuzz_database) as session:
        return await _arrange_actor(session)


@pytest.fixture(scope="module")
async def anonymous_client(fuzz_database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A client without cookies over an app on the fuzz database (one app for the module)."""
    async for client in _client_for(create_app(FUZZ_SETTINGS)):
        yield client


@pytest.fixture
def client_without_cookies(anonymous_client: httpx.AsyncClient) -> httpx.AsyncClient:
    anonymous_client.cookies.clear()
    return anonymous_client


def _url(path: str, operation: dict[str, Any], real: dict[str, Any]) -> str:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            name = parameter["name"]
            assert name in real, f"no row behind {{{name}}} of {path}: add one in _arrange_actor"
            path = path.replace("{" + name + "}", str(real[name]))
    return path


def _request_json(operation: dict[str, Any]) -> dict[str, Any] | None:
    return {} if "requestBody" in operation else None


class TestAnonymous:
    def test_the_lists_cover_the_document(self) -> None:
        documented = {(m, p) for m, p, _ in _operations()}
        # A public operation that was renamed or removed must leave this list too.
        assert documented >= PUBLIC_OPERATIONS
        assert len(PROTECTED) + len(PUBLIC) == len(documented)
        assert {"/api/v1/auth/me", "/api/v1/orgs/{org}", "/api/v1/admin/users"} <= {
            param.values[1] for param in PROTECTED
        }
        # The document says the same: the protected operations, and only they, require the
        # session cookie (the lists here are kept by hand, the document's is derived).
        requiring = {
            (m, p) for m, p, op in _operations() if op.get("security") == [{"cookieAuth": []}]
        }
        assert requiring == {(param.values[0], param.values[1]) for param in PROTECTED}

    async def test_document_is_the_served_one(
        self, client_without_cookies: httpx.AsyncClient
    ) -> None:
        served = (await client_without_cookies.get("/api/openapi.json")).json()
        assert sorted(served["paths"]) == sorted(DOCUMENT["paths"])

    @pytest.mark.parametrize(
        ("method", "path", "operation"),
        PROTECTED,
    )
    @pytest.mark.parametrize("cookie", ["none", "unknown-session"])
    async def test_protected_operation_refuses_anonymous_caller(
        self,
        anonymous: Actor,
        client_without_cookies: httpx.AsyncClient,
        method: str,
        path: str,
        operation: dict[str, Any],
        cookie: str,
    ) -> None:
        headers: dict[str, str] = {}
        if cookie == "unknown-session":
            # A well-formed token of no session, with a CSRF header as a browser would send.
            client_without_cookies.cookies.set(FUZZ_SETTINGS.SESSION_COOKIE_NAME, new_token(32))
            headers[CSRF_HEADER] = anonymous.csrf_token
        response = await client_without_cookies.request(
            method,
            _url(path, operation, anonymous.real),
            json=_request_json(operation),
            headers=headers,
        )
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "not_authenticated"

    @pytest.mark.parametrize(
        ("method", "path", "operation"),
        PUBLIC,
    )
    async def test_public_operation_answers_anonymous_caller(
        self,
        anonymous: Actor,
        client_without_cookies: httpx.AsyncClient,
        method: str,
        path: str,
        operation: dict[str, Any],
    ) -> None:
        response = await client_without_cookies.request(
            method, _url(path, operation, anonymous.real), json=_request_json(operation)
        )
        assert response.status_code != 401, response.text
        assert response.status_code < 500, response.text


# --- NUL in paths -----------------------------------------------------------------------------

WITH_PATH_PARAMETERS = [
    pytest.param(m, p, op, name, id=f"{m} {p} {name}")
    for m, p, op in _operations()
    for name in (x["name"] for x in op.get("parameters", []) if x["in"] == "path")
]


@pytest.fixture(scope="module")
async def prober(fuzz_database: Database) -> Actor:
    async with transaction(fuzz_database) as session:
        return await _arrange_actor(session)


@pytest.mark.parametrize(("method", "path", "operation", "name"), WITH_PATH_PARAMETERS)
async def test_nul_in_a_path_parameter_is_refused_cleanly(
    prober: Actor,
    client_without_cookies: httpx.AsyncClient,
    method: str,
    path: str,
    operation: dict[str, Any],
    name: str,
) -> None:
    """Schemathesis never puts NUL in a path; PostgreSQL refuses it in any text parameter.
    One path parameter at a time carries it (the others are real), signed in."""
    client_without_cookies.cookies.set(FUZZ_SETTINGS.SESSION_COOKIE_NAME, prober.session_token)
    url = _url(path, operation, {**prober.real, name: "nul%00byte"})
    response = await client_without_cookies.request(
        method, url, json=_request_json(operation), headers=prober.headers
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# --- what the fuzz found ----------------------------------------------------------------------


class TestFindings:
    def test_extension_members_never_replace_a_problems_standard_members(self) -> None:
        # The fuzz found `409 {"status": "published", ...}` from a CMS status transition whose
        # `extra` reused the name `status`: the body broke the Problem schema. The CMS now
        # says `article_status`; the problem renderer keeps its own members whatever comes.
        class Stuck(Conflict):
            code = "invalid_status_transition"
            title = "Invalid status transition"

        error = Stuck(extra={"status": "published", "code": "other", "article_status": "x"})
        response = problem(error.status, error.code, error.title, error.detail, extra=error.extra)
        body = json.loads(bytes(response.body))
        assert body["status"] == 409
        assert body["code"] == "invalid_status_transition"
        assert body["article_status"] == "x"

    @pytest.mark.parametrize("slug", ["%00", "nul%00byte", "Capitals", "-dash", "a%20b"])
    async def test_a_slug_no_organization_can_have_is_not_found(
        self, session: AsyncSession, client: httpx.AsyncClient, slug: str
    ) -> None:
        # The fuzz found `GET /api/v1/orgs/%00` answering 500 on PostgreSQL, which refuses
        # NUL in a text parameter: the org guard now answers 404 before asking the database.
        await sign_in(session, client, await create_user(session))
        for suffix in ("", "/members", "/articles"):
            response = await client.get(f"/api/v1/orgs/{slug}{suffix}")
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "organization_not_found"
