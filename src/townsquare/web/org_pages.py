"""Organizations in the console: the home page, mine (list, create) and switching the
current one (a cookie naming its slug; every page still checks membership)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from townsquare.config import Settings
from townsquare.db import DbSession, TransactionalRoute
from townsquare.orgs import schemas as orgs_schemas
from townsquare.orgs import service as orgs_service
from townsquare.web.forms import FormErrors, parse
from townsquare.web.identity import Visitor, visitor
from townsquare.web.pages import CURRENT_ORG_COOKIE, redirect, render
from townsquare.web.submit import handle_form

router = APIRouter(route_class=TransactionalRoute, include_in_schema=False)


def _remember_org(response: Response, settings: Settings, slug: str) -> None:
    response.set_cookie(
        CURRENT_ORG_COOKIE,
        slug,
        max_age=settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, session: DbSession) -> Response:
    who = await visitor(request, session)
    if who.user is None:
        return redirect("/login")
    return await render(request, session, who, "home.html")


@router.get("/orgs", response_class=HTMLResponse)
async def orgs_page(request: Request, session: DbSession) -> Response:
    who = await visitor(request, session)
    if who.user is None:
        return redirect("/login")
    return await render(request, session, who, "orgs.html")


@router.post("/orgs", response_class=HTMLResponse)
async def create_org(request: Request, session: DbSession) -> Response:
    settings: Settings = request.app.state.settings

    async def create(who: Visitor, values: dict[str, str], errors: FormErrors) -> Response | None:
        user, _ = who.signed_in()
        body = parse(orgs_schemas.OrganizationCreate, values, errors, optional=("slug", "timezone"))
        if body is None:
            return None
        org = await orgs_service.create_organization(
            session,
            user,
            name=body.name,
            slug=body.slug,
            avatar_url=None,
            timezone=body.timezone,
            settings=settings,
        )
        response = redirect("/orgs", notice="org_created")
        _remember_org(response, settings, org.slug)
        return response

    return await handle_form(
        request,
        session,
        "orgs.html",
        create,
        keep=("name", "slug", "timezone"),
        field_for={"slug_taken": "slug"},
        signed_in=True,
    )


@router.post("/orgs/switch", response_class=HTMLResponse)
async def switch_org(request: Request, session: DbSession) -> Response:
    settings: Settings = request.app.state.settings

    async def switch(who: Visitor, values: dict[str, str], errors: FormErrors) -> Response | None:
        user, _ = who.signed_in()
        mine = await orgs_service.list_memberships_for_user(session, user)
        slug = values.get("org", "")
        if slug not in {org.slug for org in mine}:
            errors.add("org", "You are not a member of this organization.")
            return None
        response = redirect("/", notice="org_switched")
        _remember_org(response, settings, slug)
        return response

    return await handle_form(request, session, "orgs.html", switch, signed_in=True)
