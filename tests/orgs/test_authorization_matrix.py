"""Every org-scoped route, every role, and own org, other org or anonymous (see matrix.py)."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from tests.orgs.conftest import ROLES_LOW_TO_HIGH, NewClient, make_team
from tests.orgs.matrix import RouteKey, Rule, all_routes
from tests.orgs.permission_table import allowed
from townsquare.main import create_app
from townsquare.orgs.models import OrganizationModule

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def org_scoped_routes() -> list[RouteKey]:
    """(method, path template) of every route whose path names an organization, except the
    anonymous `/public/` ones."""
    app = create_app(make_settings())
    found: set[RouteKey] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path
        if not isinstance(route, APIRoute) or path is None:
            continue
        if "{org}" not in path or "/public/" in path:
            continue
        for method in context.methods or ():
            if method != "HEAD":
                found.add((method, path))
    return sorted(found, key=lambda key: (key[1], key[0]))


APP_ROUTES = org_scoped_routes()
MATRIX = all_routes()


def _fill(path: str, slug: str, rule: Rule) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "org":
            return slug
        return rule.path.get(name, str(uuid.uuid4()))

    return _PARAM.sub(value, path)


async def _call(
    client: httpx.AsyncClient, method: str, path: str, slug: str, rule: Rule
) -> httpx.Response:
    kwargs: dict[str, object] = {"params": rule.params}
    if rule.body is not None:
        kwargs["json"] = rule.body
    if rule.files is not None:
        kwargs["files"] = rule.files
    return await client.request(method, _fill(path, slug, rule), **kwargs)  # type: ignore[arg-type]


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def _assert_allowed(response: httpx.Response, who: str) -> None:
    label = f"{who}: {response.status_code} {response.text[:300]}"
    assert response.status_code < 500, label
    assert response.status_code not in (401, 403, 422), label
    assert not (response.status_code == 404 and _code(response) == "organization_not_found"), label


class TestMatrixCoversTheApp:
    def test_every_org_route_is_in_the_matrix(self) -> None:
        missing = [key for key in APP_ROUTES if key not in MATRIX]
        assert not missing, (
            "org-scoped routes without an entry in the authorization matrix "
            f"(add them to tests/<domain>/matrix.py): {missing}"
        )

    def test_every_matrix_entry_is_a_route(self) -> None:
        stale = [key for key in MATRIX if key not in APP_ROUTES]
        assert not stale, f"matrix entries for routes the app does not have: {stale}"

    def test_the_org_routes_are_found(self) -> None:
        assert ("GET", "/api/v1/orgs/{org}") in APP_ROUTES
        assert ("DELETE", "/api/v1/orgs/{org}/members/{member_id}") in APP_ROUTES
        assert all("/public/" not in path for _, path in APP_ROUTES)


@pytest.mark.parametrize(
    ("method", "path"),
    [key for key in APP_ROUTES if key in MATRIX],
    ids=[f"{m} {p}" for m, p in APP_ROUTES if (m, p) in MATRIX],
)
class TestAuthorizationMatrix:
    async def test_route(
        self, method: str, path: str, session: AsyncSession, new_client: NewClient
    ) -> None:
        rule = MATRIX[(method, path)]
        team = await make_team(session, new_client)
        slug = team.org.slug

        anonymous = await _call(team.anonymous, method, path, slug, rule)
        assert anonymous.status_code == 401, anonymous.text
        assert _code(anonymous) == "not_authenticated"

        outsider = await _call(team.outsider_client, method, path, slug, rule)
        if rule.permission is None:
            _assert_allowed(outsider, "member of another organization")
        else:
            assert outsider.status_code == 404, outsider.text
            assert _code(outsider) == "organization_not_found"

        if rule.module is not None:
            await session.execute(
                delete(OrganizationModule).where(
                    OrganizationModule.organization_id == team.org.id,
                    OrganizationModule.module == rule.module,
                )
            )
            off = await _call(team.clients[ROLES_LOW_TO_HIGH[-1]], method, path, slug, rule)
            assert off.status_code == 403, off.text
            assert _code(off) == "module_disabled"
            session.add(OrganizationModule(organization_id=team.org.id, module=rule.module))
            await session.flush()

        # Lowest role first: the owner's request (deleting the organization) comes last.
        # Who is allowed comes from API.md's matrix (permission_table.py), not from the app.
        for role in ROLES_LOW_TO_HIGH:
            response = await _call(team.clients[role], method, path, slug, rule)
            if rule.permission is None or allowed(role, rule.permission):
                _assert_allowed(response, role.value)
            else:
                assert response.status_code == 403, f"{role.value}: {response.text}"
                assert _code(response) == "permission_denied", f"{role.value}: {response.text}"
