"""Shifts over HTTP: inside their event, batches all or none, capacity rules, moves and
cancellations that tell the volunteers."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from tests.events.helpers import (
    emails_to,
    events_url,
    iso,
    make_event,
    make_shift,
    problem_code,
    shift_url,
    signups_url,
)
from tests.orgs.conftest import Team
from townsquare.orgs.enums import MemberRole

EDITOR = MemberRole.editor
MEMBER = MemberRole.member
AGENT = MemberRole.agent
ADMIN = MemberRole.admin


def _shift_body(
    event: dict[str, object], *, offset: float = 0, hours: float = 2
) -> dict[str, object]:
    start = datetime.fromisoformat(str(event["starts_at"])) + timedelta(hours=offset)
    return {
        "title": "Stand",
        "starts_at": iso(start),
        "ends_at": iso(start + timedelta(hours=hours)),
        "capacity": 3,
    }


class TestCreate:
    async def test_a_shift_starts_with_every_place_free(self, team: Team) -> None:
        event = await make_event(team.clients[EDITOR], team.org.slug)

        shift = await make_shift(team.clients[EDITOR], team.org.slug, event, capacity=4)

        assert shift["free_places"] == 4
        assert shift["confirmed_count"] == 0
        assert shift["sequence"] == 0
        assert shift["cancelled_at"] is None

    async def test_a_shift_outside_its_event_is_refused(self, team: Team) -> None:
        event = await make_event(team.clients[EDITOR], team.org.slug, hours=4)
        url = f"{events_url(team.org.slug)}/{event['id']}/shifts"

        late = await team.clients[EDITOR].post(url, json=_shift_body(event, offset=3))
        early = await team.clients[EDITOR].post(url, json=_shift_body(event, offset=-1))
        backwards = await team.clients[EDITOR].post(url, json=_shift_body(event, hours=-1))

        assert problem_code(late, 422) == "shift_outside_event"
        assert problem_code(early, 422) == "shift_outside_event"
        assert problem_code(backwards, 422) == "invalid_time_range"

    async def test_capacity_must_be_at_least_one(self, team: Team) -> None:
        event = await make_event(team.clients[EDITOR], team.org.slug)
        url = f"{events_url(team.org.slug)}/{event['id']}/shifts"

        response = await team.clients[EDITOR].post(url, json={**_shift_body(event), "capacity": 0})

        assert problem_code(response, 422) == "validation_error"

    async def test_a_batch_is_created_whole_or_not_at_all(self, team: Team) -> None:
        event = await make_event(team.clients[EDITOR], team.org.slug, hours=6)
        url = f"{events_url(team.org.slug)}/{event['id']}/shifts"
        good = [_shift_body(event, offset=n) for n in range(3)]

        refused = await team.clients[EDITOR].post(
            f"{url}/batch", json={"shifts": [*good, _shift_body(event, offset=5)]}
        )
        assert problem_code(refused, 422) == "shift_outside_event"
        assert (await team.clients[EDITOR].get(url)).json()["total"] == 0

        created = await team.clients[EDITOR].post(f"{url}/batch", json={"shifts": good})
        assert created.status_code == 201, created.text
        assert len(created.json()) == 3
        assert (await team.clients[EDITOR].get(url)).json()["total"] == 3

    async def test_members_read_shifts_but_cannot_create_them(self, team: Team) -> None:
        event = await make_event(team.clients[EDITOR], team.org.slug)
        await make_shift(team.clients[EDITOR], team.org.slug, event)
        url = f"{events_url(team.org.slug)}/{event['id']}/shifts"

        listed = await team.clients[MEMBER].get(url)
        created = await team.clients[MEMBER].post(url, json=_shift_body(event))

        assert listed.json()["total"] == 1
        assert problem_code(created, 403) == "permission_denied"


class TestCapacity:
    async def test_shrinking_below_the_confirmed_count_is_refused(self, team: Team) -> None:
        slug = team.org.slug
        event = await make_event(team.clients[EDITOR], slug)
        shift = await make_shift(team.clients[EDITOR], slug, event, capacity=3)
        for role in (MEMBER, AGENT):
            assert (
                await team.clients[role].post(signups_url(slug, shift), json={})
            ).status_code == 201

        refused = await team.clients[EDITOR].patch(shift_url(slug, shift), json={"capacity": 1})
        allowed = await team.clients[EDITOR].patch(shift_url(slug, shift), json={"capacity": 2})

        assert problem_code(refused, 409) == "capacity_below_signups"
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["free_places"] == 0

    async def test_more_capacity_promotes_from_the_waiting_list(
        self, team: Team, session: AsyncSession
    ) -> None:
        slug = team.org.slug
        event = await make_event(team.clients[EDITOR], slug)
        shift = await make_shift(team.clients[EDITOR], slug, event, capacity=1)
        await team.clients[MEMBER].post(signups_url(slug, shift), json={})
        waiting = await team.clients[AGENT].post(signups_url(slug, shift), json={"waitlist": True})
        assert waiting.json()["position"] == 1

        grown = await team.clients[EDITOR].patch(shift_url(slug, shift), json={"capacity": 2})

        assert grown.json()["confirmed_count"] == 2
        assert grown.json()["waitlist_count"] == 0
        assert len(await emails_to(session, team.users[AGENT].email, "shift_promoted")) == 1


class TestChanges:
    async def test_a_new_time_grows_sequence_and_emails_the_new_time(
        self, team: Team, session: AsyncSession
    ) -> None:
        slug = team.org.slug
        event = await make_event(team.clients[EDITOR], slug, timezone="Europe/Paris")
        shift = await make_shift(team.clients[EDITOR], slug, event, offset_hours=1)
        await team.clients[MEMBER].post(signups_url(slug, shift), json={})
        new_start = datetime.fromisoformat(shift["starts_at"]) + timedelta(hours=2)

        moved = await team.clients[EDITOR].patch(
            shift_url(slug, shift),
            json={"starts_at": iso(new_start), "ends_at": iso(new_start + timedelta(hours=3))},
        )

        assert moved.status_code == 200, moved.text
        assert moved.json()["sequence"] == 1
        (email,) = await emails_to(session, team.users[MEMBER].email, "shift_changed")
        local = new_start.astimezone(ZoneInfo("Europe/Paris"))
        assert f"{local:%H:%M}" in email.text_body
        assert email.html_body is not None

    async def test_a_new_title_alone_changes_no_sequence_and_sends_nothing(
        self, team: Team, session: AsyncSession
    ) -> None:
        slug = team.org.slug
        event = await make_event(team.clients[EDITOR], slug)
        shift = await make_shift(team.clients[EDITOR], slug, event)
        await team.clients[MEMBER].post(signups_url(slug, shift), json={})

        renamed = await team.clients[EDITOR].patch(shift_url(slug, shift), json={"title": "Bar 2"})

        assert renamed.json()["sequence"] == 0
        assert await emails_to(session, team.users[MEMBER].email, "shift_changed") == []

    async def test_deleting_a_shift_with_volunteers_cancels_it_and_tells_them(
        self, team: Team, session: AsyncSession
    ) -> None:
        slug = team.org.slug
        event = await make_event(team.clients[EDITOR], slug)
        shift = await make_shift(team.clients[EDITOR], slug, event, capacity=1)
        await team.clients[MEMBER].post(signups_url(slug, shift), json={})
        await team.clients[AGENT].post(signups_url(slug, shift), json={"waitlist": True})

        deleted = await team.clients[EDITOR].delete(shift_url(slug, shift))

        assert deleted.status_code == 204
        kept = (await team.clients[EDITOR].get(shift_url(slug, shift))).json()
        assert kept["cancelled_at"] is not None
        assert kept["sequence"] == 1
        assert kept["free_places"] == 0
        for role in (MEMBER, AGENT):
            assert len(await emails_to(session, team.users[role].email, "shift_cancelled")) == 1
        late = await team.clients[ADMIN].post(signups_url(slug, shift), json={})
        assert problem_code(late, 409) == "signup_closed"
        edit = await team.clients[EDITOR].patch(shift_url(slug, shift), json={"capacity": 5})
        assert problem_code(edit, 409) == "shift_cancelled"

    async def test_deleting_an_unused_shift_removes_it(self, team: Team) -> None:
        event = await make_event(team.clients[EDITOR], team.org.slug)
        shift = await make_shift(team.clients[EDITOR], team.org.slug, event)

        assert (
            await team.clients[EDITOR].delete(shift_url(team.org.slug, shift))
        ).status_code == 204

        gone = await team.clients[EDITOR].get(shift_url(team.org.slug, shift))
        assert problem_code(gone, 404) == "shift_not_found"

    async def test_a_shift_of_another_event_is_not_found(self, team: Team) -> None:
        slug = team.org.slug
        first = await make_event(team.clients[EDITOR], slug)
        second = await make_event(team.clients[EDITOR], slug)
        shift = await make_shift(team.clients[EDITOR], slug, first)
        wrong = f"{events_url(slug)}/{second['id']}/shifts/{shift['id']}"

        assert problem_code(await team.clients[EDITOR].get(wrong), 404) == "shift_not_found"
        patched = await team.clients[EDITOR].patch(wrong, json={"capacity": 9})
        assert problem_code(patched, 404) == "shift_not_found"
