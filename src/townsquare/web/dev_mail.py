"""`/dev/mail`: in development with the console or file email backend, the emails
Townsquare sent, read from the outbox, so a newcomer can follow the links in them.
Anywhere else the pages do not exist (404)."""

from __future__ import annotations

import re
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from townsquare.config import Settings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.email.models import OutboxEmail
from townsquare.web.identity import visitor
from townsquare.web.pages import not_found_page, render

router = APIRouter(prefix="/dev/mail", route_class=TransactionalRoute, include_in_schema=False)
SHOWN = 100
_URL = re.compile(r"https?://[^\s<>\"']+")


def links_to_us(settings: Settings, text: str) -> list[str]:
    """The links of an email that lead to this Townsquare (no other site is made a link)."""
    ours = settings.PUBLIC_URL.rstrip("/") + "/"
    return [url for url in dict.fromkeys(_URL.findall(text)) if url.startswith(ours)]


@router.get("", response_class=HTMLResponse)
async def mailbox(request: Request, session: DbSession) -> Response:
    settings: Settings = request.app.state.settings
    if not settings.dev_mailbox:
        return not_found_page()
    emails = (
        await session.scalars(
            select(OutboxEmail)
            .order_by(OutboxEmail.created_at.desc(), OutboxEmail.id.desc())
            .limit(SHOWN)
        )
    ).all()
    who = await visitor(request, session)
    return await render(request, session, who, "dev_mail.html", emails=emails)


@router.get("/{email_id}", response_class=HTMLResponse)
async def message(email_id: uuid.UUID, request: Request, session: DbSession) -> Response:
    settings: Settings = request.app.state.settings
    email = await session.get(OutboxEmail, email_id) if settings.dev_mailbox else None
    if email is None:
        return not_found_page()
    who = await visitor(request, session)
    return await render(
        request,
        session,
        who,
        "dev_mail_message.html",
        email=email,
        links=links_to_us(settings, email.text_body),
    )
