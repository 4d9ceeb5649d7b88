"""Events over HTTP: create, read, list, update, publish, move, cancel, delete."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tests.events.helpers import (
    emails_to,
    events_url,
    in_days,
    iso,
    make_event,
    make_shift,
    problem_code,
    signups_url,
)
from tests.factories import create_organization
from tests.orgs.conftest import Team
from townsquare.orgs.enums import MemberRole

EDITOR = MemberRole.editor
MEMBER = MemberRole.member


class TestCreate:
    async def test_a_new_event_is_a_draft_in_the_orgs_time_zone(
        self, team: Team, session: AsyncSession
    ) -> None:
        team.org.timezone = "Europe/Paris"
        await session.flush()
        start = in_days(10)
        response = await team.clients[EDITOR].post(
            events_url(team.org.slug),
            json={
                "title": "Harvest fair",
                "description": '<p onclick="x()">Come <script>alert(1)</script>along</p>',
                "starts_at": iso(start),
                "ends_at": iso(start + timedelta(hours=6)),
            },
        )

        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "draft"
        assert body["timezone"] == "Europe/Paris"
        assert body["description"] == "<p>Come along</p>"
        assert body["location"] is None
        assert body["shift_count"] == 0

    async def test_end_before_start_is_invalid_time_range(self, team: Team) -> None:
        start = in_days(10)
        response = await team.clients[EDITOR].post(
            events_url(team.org.slug),
            json={"title": "Backwards", "starts_at": iso(start), "ends_at": iso(start)},
        )

        assert problem_code(response, 422) == "invalid_time_range"
        listed = await team.clients[EDITOR].get(events_url(team.org.slug))
        assert listed.json()["total"] == 0

    async def test_an_unknown_time_zone_is_refused(self, team: Team) -> None:
        start = in_days(10)
        response = await team.clients[EDITOR].post(
            events_url(team.org.slug),
            json={
                "title": "Somewhere",
                "starts_at": iso(start),
                "ends_at": iso(start + timedelta(hours=1)),
                "timezone": "Mars/Olympus",
            },
        )

        assert problem_code(response, 422) == "validation_error"


class TestReading:
    async def test_members_see_published_events_but_not_drafts(self, team: Team) -> None:
        slug = team.org.slug
        published = await make_event(team.clients[EDITOR], slug, title="Open day")
        draft = await make_event(team.clients[EDITOR], slug, status="draft", title="Secret")

        member_list = await team.clients[MEMBER].get(events_url(slug))
        editor_list = await team.clients[EDITOR].get(events_url(slug))
        draft_for_member = await team.clients[MEMBER].get(f"{events_url(slug)}/{draft['id']}")

        assert [e["title"] for e in member_list.json()["items"]] == ["Open day"]
        assert {e["title"] for e in editor_list.json()["items"]} == {"Open day", "Secret"}
        assert problem_code(draft_for_member, 404) == "event_not_found"
        one = await team.clients[MEMBER].get(f"{events_url(slug)}/{published['id']}")
        assert one.status_code == 200
        assert one.json()["title"] == "Open day"

    async def test_another_orgs_event_is_not_found_and_unchanged(
        self, team: Team, session: AsyncSession
    ) -> None:
        theirs = await make_event(team.outsider_client, team.other_org.slug, title="Theirs")
        mine = events_url(team.org.slug)

        read = await team.clients[EDITOR].get(f"{mine}/{theirs['id']}")
        patched = await team.clients[EDITOR].patch(f"{mine}/{theirs['id']}", json={"title": "X"})
        deleted = await team.clients[EDITOR].delete(f"{mine}/{theirs['id']}")

        for response in (read, patched, deleted):
            assert problem_code(response, 404) == "event_not_found"
        again = await team.outsider_client.get(f"{events_url(team.other_org.slug)}/{theirs['id']}")
        assert again.json()["title"] == "Theirs"

    async def test_upcoming_leaves_out_ended_events(self, team: Team) -> None:
        slug = team.org.slug
        await make_event(team.clients[EDITOR], slug, starts_at=in_days(-3), title="Past")
        await make_event(team.clients[EDITOR], slug, starts_at=in_days(3), title="Next")

        response = await team.clients[MEMBER].get(events_url(slug), params={"upcoming": "true"})

        assert [e["title"] for e in response.json()["items"]] == ["Next"]


class TestUpdate:
    async def test_patch_refuses_an_end_before_the_start(self, team: Team) -> None:
        event = await make_event(team.clients[EDITOR], team.org.slug)
        url = f"{events_url(team.org.slug)}/{event['id']}"

        response = await team.clients[EDITOR].patch(url, json={"ends_at": event["starts_at"]})

        assert problem_code(response, 422) == "invalid_time_range"
        assert (await team.clients[EDITOR].get(url)).json()["ends_at"] == event["ends_at"]

    async def test_shrinking_past_a_shift_is_refused(self, team: Team) -> None:
        event = await make_event(team.clients[EDITOR], team.org.slug, hours=12)
        await make_shift(team.clients[EDITOR], team.org.slug, event, offset_hours=8, hours=3)
        url = f"{events_url(team.org.slug)}/{event['id']}"
        new_end = datetime.fromisoformat(event["starts_at"]) + timedelta(hours=10)

        response = await team.clients[EDITOR].patch(url, json={"ends_at": iso(new_end)})

        assert problem_code(response, 422) == "shift_outside_event"

    async def test_moving_the_event_moves_its_shifts_and_emails_their_volunteers(
        self, team: Team, session: AsyncSession
    ) -> None:
        slug = team.org.slug
        event = await make_event(team.clients[EDITOR], slug, timezone="Europe/Berlin")
        shift = await make_shift(team.clients[EDITOR], slug, event, offset_hours=2)
        joined = await team.clients[MEMBER].post(signups_url(slug, shift), json={})
        assert joined.status_code == 201, joined.text
        start = datetime.fromisoformat(event["starts_at"])
        end = datetime.fromisoformat(event["ends_at"])
        url = f"{events_url(slug)}/{event['id']}"

        response = await team.clients[EDITOR].patch(
            url,
            json={
                "starts_at": iso(start + timedelta(days=1)),
                "ends_at": iso(end + timedelta(days=1)),
            },
        )

        assert response.status_code == 200, response.text
        shifts = (await team.clients[EDITOR].get(f"{url}/shifts")).json()["items"]
        moved = datetime.fromisoformat(shifts[0]["starts_at"])
        assert moved == datetime.fromisoformat(shift["starts_at"]) + timedelta(days=1)
        assert shifts[0]["sequence"] == shift["sequence"] + 1
        (email,) = await emails_to(session, team.users[MEMBER].email, "shift_changed")
        assert "Europe/Berlin" in email.text_body
        assert "(was:" in email.text_body

    async def test_unpublishing_is_refused_while_volunteers_are_signed_up(self, team: Team) -> None:
        slug = team.org.slug
        event = await make_event(team.clients[EDITOR], slug)
        shift = await make_shift(team.clients[EDITOR], slug, event)
        await team.clients[MEMBER].post(signups_url(slug, shift), json={})

        response = await team.clients[EDITOR].patch(
            f"{events_url(slug)}/{event['id']}", json={"status": "draft"}
        )

        assert problem_code(response, 409) == "invalid_status_transition"


class TestCancel:
    async def test_cancelling_emails_everyone_once_and_closes_signups(
        self, team: Team, session: AsyncSession
    ) -> None:
        slug = team.org.slug
        event = await make_event(team.clients[EDITOR], slug)
        first = await make_shift(team.clients[EDITOR], slug, event, title="Bar", capacity=1)
        second = await make_shift(
            team.clients[EDITOR], slug, event, offset_hours=4, title="Kitchen"
        )
        member = team.clients[MEMBER]
        assert (await member.post(signups_url(slug, first), json={})).status_code == 201
        assert (await member.post(signups_url(slug, second), json={})).status_code == 201
        waiting = await team.clients[MemberRole.agent].post(
            signups_url(slug, first), json={"waitlist": True}
        )
        assert waiting.json()["status"] == "waitlisted"

        response = await team.clients[EDITOR].patch(
            f"{events_url(slug)}/{event['id']}", json={"status": "cancelled"}
        )

        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        (email,) = await emails_to(session, team.users[MEMBER].email, "event_cancelled")
        assert "Bar:" in email.text_body
        assert "Kitchen:" in email.text_body
        assert (
            len(await emails_to(session, team.users[MemberRole.agent].email, "event_cancelled"))
            == 1
        )
        shifts = (await member.get(f"{events_url(slug)}/{event['id']}/shifts")).json()["items"]
        assert all(s["cancelled_at"] is not None for s in shifts)
        late = await team.clients[MemberRole.admin].post(signups_url(slug, first), json={})
        assert problem_code(late, 409) == "signup_closed"
        again = await team.clients[EDITOR].patch(
            f"{events_url(slug)}/{event['id']}", json={"title": "Back on"}
        )
        assert problem_code(again, 409) == "event_cancelled"

    async def test_delete_removes_an_event_nobody_signed_up_for(self, team: Team) -> None:
        event = await make_event(team.clients[EDITOR], team.org.slug)
        await make_shift(team.clients[EDITOR], team.org.slug, event)
        url = f"{events_url(team.org.slug)}/{event['id']}"

        assert (await team.clients[EDITOR].delete(url)).status_code == 204

        assert problem_code(await team.clients[EDITOR].get(url), 404) == "event_not_found"

    async def test_delete_of_an_event_with_signups_cancels_it(
        self, team: Team, session: AsyncSession
    ) -> None:
        slug = team.org.slug
        event = await make_event(team.clients[EDITOR], slug)
        shift = await make_shift(team.clients[EDITOR], slug, event)
        await team.clients[MEMBER].post(signups_url(slug, shift), json={})
        url = f"{events_url(slug)}/{event['id']}"

        assert (await team.clients[EDITOR].delete(url)).status_code == 204

        kept = await team.clients[EDITOR].get(url)
        assert kept.json()["status"] == "cancelled"
        assert len(await emails_to(session, team.users[MEMBER].email, "event_cancelled")) == 1


class TestModule:
    async def test_an_org_without_the_events_module_answers_module_disabled(
        self, team: Team, session: AsyncSession
    ) -> None:
        bare = await create_organization(session, owner=team.users[MemberRole.owner], modules=())
        response = await team.clients[MemberRole.owner].get(events_url(bare.slug))
        assert problem_code(response, 403) == "module_disabled"
