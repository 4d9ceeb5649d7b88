"""The public reads: published upcoming events by cursor, one event with its shifts' free
places and the organization's name, never a volunteer's name or email."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from tests.events.helpers import API, in_days, make_event, make_shift, problem_code, signups_url
from tests.orgs.conftest import Team
from townsquare.orgs.enums import MemberRole, Module
from townsquare.orgs.models import OrganizationModule

EDITOR = MemberRole.editor


def public_url(slug: str) -> str:
    return f"{API}/public/orgs/{slug}/events"


class TestList:
    async def test_published_upcoming_events_soonest_first_by_cursor(self, team: Team) -> None:
        slug, editor = team.org.slug, team.clients[EDITOR]
        titles = [f"Event {n}" for n in range(5)]
        for n, title in enumerate(titles):
            await make_event(editor, slug, starts_at=in_days(n + 1), title=title)
        await make_event(editor, slug, starts_at=in_days(2), title="Draft", status="draft")
        await make_event(editor, slug, starts_at=in_days(-5), title="Over")
        cancelled = await make_event(editor, slug, starts_at=in_days(3), title="Off")
        await editor.patch(
            f"{API}/orgs/{slug}/events/{cancelled['id']}", json={"status": "cancelled"}
        )

        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
            response = await team.anonymous.get(public_url(slug), params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [item["title"] for item in page["items"]]
            assert all(item["organization_name"] == "Acme" for item in page["items"])
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break

        assert seen == titles
        assert pages == 3

    async def test_a_broken_cursor_is_invalid_cursor(self, team: Team) -> None:
        response = await team.anonymous.get(public_url(team.org.slug), params={"cursor": "nope"})
        assert problem_code(response, 400) == "invalid_cursor"

    async def test_an_unknown_org_or_module_off_is_not_found(
        self, team: Team, session: AsyncSession
    ) -> None:
        unknown = await team.anonymous.get(public_url("no-such-org"))
        await session.execute(
            delete(OrganizationModule).where(
                OrganizationModule.organization_id == team.org.id,
                OrganizationModule.module == Module.events,
            )
        )
        off = await team.anonymous.get(public_url(team.org.slug))

        assert problem_code(unknown, 404) == "event_not_found"
        assert problem_code(off, 404) == "event_not_found"


class TestOneEvent:
    async def test_free_places_and_no_volunteer_names(self, team: Team) -> None:
        slug, editor = team.org.slug, team.clients[EDITOR]
        event = await make_event(editor, slug, description="<p>Bring gloves</p>")
        bar = await make_shift(editor, slug, event, capacity=3, title="Bar")
        gone = await make_shift(editor, slug, event, offset_hours=4, title="Gone")
        for role in (MemberRole.member, MemberRole.agent):
            assert (
                await team.clients[role].post(signups_url(slug, bar), json={})
            ).status_code == 201
        await team.clients[MemberRole.admin].post(signups_url(slug, gone), json={})
        await editor.delete(f"{API}/orgs/{slug}/events/{event['id']}/shifts/{gone['id']}")

        response = await team.anonymous.get(f"{public_url(slug)}/{event['id']}")

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["organization_name"] == "Acme"
        assert body["description"] == "<p>Bring gloves</p>"
        assert [(s["title"], s["capacity"], s["free_places"]) for s in body["shifts"]] == [
            ("Bar", 3, 1)
        ]
        for user in team.users.values():
            assert user.display_name not in response.text
            assert user.email not in response.text

    async def test_a_draft_is_not_public(self, team: Team) -> None:
        draft = await make_event(team.clients[EDITOR], team.org.slug, status="draft")

        response = await team.anonymous.get(f"{public_url(team.org.slug)}/{draft['id']}")

        assert problem_code(response, 404) == "event_not_found"
