"""Bidirectional controls and zero-width characters: refused in one-line fields (422
`invisible_character` naming the field), kept in bodies."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_organization, create_user, sign_in
from townsquare.cms.models import Article
from townsquare.kit.fields import SingleLine
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.models import Organization

API = "/api/v1"
INVISIBLE = [
    "\u202e",
    "\u202a",
    "\u2066",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
    "\u200b",
    "\u2060",
    "\ufeff",
]


class _Line(BaseModel):
    text: Annotated[str, SingleLine(100)]


@pytest.mark.parametrize("char", INVISIBLE)
def test_every_invisible_character_is_refused(char: str) -> None:
    with pytest.raises(ValidationError) as refused:
        _Line(text=f"invoice{char}fdp.exe")
    [error] = refused.value.errors()
    assert error["type"] == "invisible_character"
    assert f"U+{ord(char):04X}" in error["msg"]


@pytest.mark.parametrize(
    "text",
    ["ad\u200dmin", "\u200cleading", "trailing\u200d", "space \u200d here", "x\u200c\u200cy"],
)
def test_joiners_outside_a_word_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        _Line(text=text)


@pytest.mark.parametrize(
    "text",
    [
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # family emoji
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian ZWNJ
        "\u0915\u094d\u200d\u0937",  # Devanagari ZWJ
        "Jürgen — Ünal",
    ],
)
def test_text_that_needs_joiners_is_kept(text: str) -> None:
    assert _Line(text=text).text == text


def _refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [(field, "invisible_character")]


async def _owner_org(session: AsyncSession, client: httpx.AsyncClient) -> Organization:
    owner = await create_user(session)
    org = await create_organization(session)
    from tests.factories import add_member

    await add_member(session, org, owner, MemberRole.owner)
    await sign_in(session, client, owner)
    return org


async def test_registration_display_name(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/auth/register",
        json={
            "email": "bidi@example.org",
            "password": "correct-Horse-battery-staple-7",
            "display_name": "Admin\u202e",
        },
    )
    _refused(response, "display_name")


async def test_organization_name(session: AsyncSession, client: httpx.AsyncClient) -> None:
    org = await _owner_org(session, client)
    created = await client.post(f"{API}/orgs", json={"name": "Acme\u200b Corp"})
    renamed = await client.patch(f"{API}/orgs/{org.slug}", json={"name": "\u2066Acme"})
    _refused(created, "name")
    _refused(renamed, "name")


async def test_article_title_refused_and_body_kept(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    org = await _owner_org(session, client)
    refused = await client.post(
        f"{API}/orgs/{org.slug}/articles", json={"title": "invoice\u202efdp.exe"}
    )
    _refused(refused, "title")
    count = await session.scalar(
        select(func.count()).select_from(Article).where(Article.organization_id == org.id)
    )
    assert count == 0

    body = "<p>\u05e9\u05dc\u05d5\u05dd \u2067abc\u2069 and a\u200bb</p>"
    kept = await client.post(
        f"{API}/orgs/{org.slug}/articles", json={"title": "Fine", "body": body}
    )
    assert kept.status_code == 201, kept.text
    assert "\u2067abc\u2069" in kept.json()["body"]
    assert "a\u200bb" in kept.json()["body"]


async def test_category_and_tag_names(session: AsyncSession, client: httpx.AsyncClient) -> None:
    org = await _owner_org(session, client)
    category = await client.post(f"{API}/orgs/{org.slug}/categories", json={"name": "News\u200f"})
    tag = await client.post(f"{API}/orgs/{org.slug}/tags", json={"name": "\ufefftag"})
    _refused(category, "name")
    _refused(tag, "name")


async def test_support_subject_refused_and_message_body_kept(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    org = await _owner_org(session, client)
    url = f"{API}/orgs/{org.slug}/conversations"
    refused = await client.post(url, json={"subject": "Refund\u202e", "body": "Hello"})
    _refused(refused, "subject")

    kept = await client.post(url, json={"subject": "Refund", "body": "Hello \u202eworld"})
    assert kept.status_code == 201, kept.text


async def test_media_upload_filename_and_title(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    org = await _owner_org(session, client)
    response = await client.post(
        f"{API}/orgs/{org.slug}/media/uploads",
        json={
            "filename": "invoice\u202efdp.exe",
            "content_type": "image/png",
            "size": 100,
            "title": "ok",
        },
    )
    _refused(response, "filename")
