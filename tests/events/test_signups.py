"""Signing up, the reason codes of a refusal, cancelling (the deadline on a moved clock),
removals by managers, no-shows and rosters."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tests.events.helpers import (
    emails_to,
    events_url,
    in_days,
    make_event,
    make_shift,
    problem_code,
    signups_url,
)
from tests.factories import add_member
from tests.orgs.conftest import Team
from townsquare.kit import clock as app_clock
from townsquare.orgs.enums import MemberRole

EDITOR = MemberRole.editor
MEMBER = MemberRole.member
AGENT = MemberRole.agent
ADMIN = MemberRole.admin


async def _open_shift(team: Team, **fields: Any) -> dict[str, Any]:
    event = await make_event(
        team.clients[EDITOR], team.org.slug, starts_at=fields.pop("starts_at", None)
    )
    return await make_shift(team.clients[EDITOR], team.org.slug, event, **fields)


class TestSigningUp:
    async def test_a_member_gets_a_confirmed_place(self, team: Team) -> None:
        shift = await _open_shift(team, capacity=2)

        response = await team.clients[MEMBER].post(signups_url(team.org.slug, shift), json={})

        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "confirmed"
        assert body["position"] is None
        assert body["user"] == {
            "id": str(team.users[MEMBER].id),
            "display_name": team.users[MEMBER].display_name,
        }
        listed = await team.clients[MEMBER].get(
            f"{events_url(team.org.slug)}/{shift['event_id']}/shifts"
        )
        assert listed.json()["items"][0]["free_places"] == 1

    async def test_twice_is_already_signed_up(self, team: Team) -> None:
        shift = await _open_shift(team)
        url = signups_url(team.org.slug, shift)
        await team.clients[MEMBER].post(url, json={})

        again = await team.clients[MEMBER].post(url, json={"waitlist": True})

        assert problem_code(again, 409) == "already_signed_up"

    async def test_a_full_shift_is_shift_full_or_the_waiting_list(self, team: Team) -> None:
        shift = await _open_shift(team, capacity=1)
        url = signups_url(team.org.slug, shift)
        await team.clients[MEMBER].post(url, json={})

        full = await team.clients[AGENT].post(url, json={})
        first = await team.clients[AGENT].post(url, json={"waitlist": True})
        second = await team.clients[ADMIN].post(url, json={"waitlist": True})

        assert problem_code(full, 409) == "shift_full"
        assert (first.json()["status"], first.json()["position"]) == ("waitlisted", 1)
        assert (second.json()["status"], second.json()["position"]) == ("waitlisted", 2)

    async def test_a_draft_events_shift_is_signup_closed(self, team: Team) -> None:
        event = await make_event(team.clients[EDITOR], team.org.slug, status="draft")
        shift = await make_shift(team.clients[EDITOR], team.org.slug, event)

        by_manager = await team.clients[ADMIN].post(signups_url(team.org.slug, shift), json={})
        by_member = await team.clients[MEMBER].post(signups_url(team.org.slug, shift), json={})

        assert problem_code(by_manager, 409) == "signup_closed"
        assert problem_code(by_member, 404) == "event_not_found"

    async def test_a_started_shift_is_shift_started(self, team: Team, clock: ModuleType) -> None:
        shift = await _open_shift(team, starts_at=in_days(1))
        clock.travel(timedelta(days=1, hours=1))

        response = await team.clients[MEMBER].post(signups_url(team.org.slug, shift), json={})

        assert problem_code(response, 409) == "shift_started"

    async def test_an_overlapping_shift_in_another_org_is_refused(
        self, team: Team, session: AsyncSession
    ) -> None:
        volunteer = team.users[MEMBER]
        await add_member(session, team.other_org, volunteer, MemberRole.member)
        start = in_days(5)
        theirs = await make_event(team.outsider_client, team.other_org.slug, starts_at=start)
        their_shift = await make_shift(team.outsider_client, team.other_org.slug, theirs, hours=4)
        joined = await team.clients[MEMBER].post(
            signups_url(team.other_org.slug, their_shift), json={}
        )
        assert joined.status_code == 201, joined.text
        ours = await make_event(team.clients[EDITOR], team.org.slug, starts_at=start)
        overlapping = await make_shift(
            team.clients[EDITOR], team.org.slug, ours, offset_hours=3, hours=2
        )
        after = await make_shift(team.clients[EDITOR], team.org.slug, ours, offset_hours=4)

        refused = await team.clients[MEMBER].post(
            signups_url(team.org.slug, overlapping), json={"waitlist": True}
        )
        back_to_back = await team.clients[MEMBER].post(signups_url(team.org.slug, after), json={})

        assert problem_code(refused, 409) == "overlaps_own_shift"
        assert back_to_back.status_code == 201, back_to_back.text

    async def test_a_cancelled_signup_frees_the_person_to_sign_up_again(self, team: Team) -> None:
        shift = await _open_shift(team)
        url = signups_url(team.org.slug, shift)
        first = (await team.clients[MEMBER].post(url, json={})).json()
        assert (await team.clients[MEMBER].delete(f"{url}/{first['id']}")).status_code == 204

        again = await team.clients[MEMBER].post(url, json={})

        assert again.status_code == 201, again.text
        assert again.json()["id"] != first["id"]


class TestCancelling:
    async def test_the_deadline_on_a_moved_clock(self, team: Team, clock: ModuleType) -> None:
        start = in_days(2)
        shift = await _open_shift(team, starts_at=start)
        url = signups_url(team.org.slug, shift)
        mine = (await team.clients[MEMBER].post(url, json={})).json()
        theirs = (await team.clients[AGENT].post(url, json={})).json()
        now = app_clock.now()
        # Three hours before the start is still fine; a minute later it is not.
        clock.travel(start - timedelta(hours=3, minutes=1) - now)
        ok = await team.clients[AGENT].delete(f"{url}/{theirs['id']}")
        clock.travel(timedelta(minutes=2))

        late = await team.clients[MEMBER].delete(f"{url}/{mine['id']}")

        assert ok.status_code == 204, ok.text
        body = problem_code(late, 409)
        assert body == "cancel_deadline_passed"
        by_manager = await team.clients[EDITOR].delete(f"{url}/{mine['id']}")
        assert by_manager.status_code == 204, by_manager.text

    async def test_leaving_a_waiting_list_has_no_deadline(
        self, team: Team, clock: ModuleType
    ) -> None:
        start = in_days(1)
        shift = await _open_shift(team, starts_at=start, capacity=1)
        url = signups_url(team.org.slug, shift)
        await team.clients[MEMBER].post(url, json={})
        waiting = (await team.clients[AGENT].post(url, json={"waitlist": True})).json()
        clock.travel(start - app_clock.now() - timedelta(minutes=30))

        response = await team.clients[AGENT].delete(f"{url}/{waiting['id']}")

        assert response.status_code == 204, response.text

    async def test_a_member_cannot_cancel_someone_elses_signup(self, team: Team) -> None:
        shift = await _open_shift(team)
        url = signups_url(team.org.slug, shift)
        theirs = (await team.clients[AGENT].post(url, json={})).json()

        response = await team.clients[MEMBER].delete(f"{url}/{theirs['id']}")

        assert problem_code(response, 404) == "signup_not_found"
        roster = await team.clients[EDITOR].get(url)
        assert [s["status"] for s in roster.json()["items"]] == ["confirmed"]

    async def test_a_manager_removal_tells_the_volunteer_and_promotes_the_next(
        self, team: Team, session: AsyncSession
    ) -> None:
        shift = await _open_shift(team, capacity=1)
        url = signups_url(team.org.slug, shift)
        placed = (await team.clients[MEMBER].post(url, json={})).json()
        await team.clients[AGENT].post(url, json={"waitlist": True})

        response = await team.clients[EDITOR].delete(f"{url}/{placed['id']}")

        assert response.status_code == 204, response.text
        assert len(await emails_to(session, team.users[MEMBER].email, "shift_signup_removed")) == 1
        assert len(await emails_to(session, team.users[AGENT].email, "shift_promoted")) == 1
        roster = (await team.clients[EDITOR].get(url)).json()["items"]
        assert [(r["user"]["id"], r["status"]) for r in roster] == [
            (str(team.users[AGENT].id), "confirmed")
        ]

    async def test_a_cancelled_signup_cannot_be_cancelled_again(self, team: Team) -> None:
        shift = await _open_shift(team)
        url = signups_url(team.org.slug, shift)
        mine = (await team.clients[MEMBER].post(url, json={})).json()
        await team.clients[MEMBER].delete(f"{url}/{mine['id']}")

        again = await team.clients[MEMBER].delete(f"{url}/{mine['id']}")

        assert problem_code(again, 409) == "signup_not_active"


class TestNoShowsAndRosters:
    async def test_a_no_show_is_marked_after_the_start_only(
        self, team: Team, clock: ModuleType
    ) -> None:
        start = in_days(1)
        shift = await _open_shift(team, starts_at=start)
        url = signups_url(team.org.slug, shift)
        mine = (await team.clients[MEMBER].post(url, json={})).json()

        early = await team.clients[EDITOR].post(f"{url}/{mine['id']}/no-show")
        clock.travel(start - app_clock.now() + timedelta(minutes=5))
        marked = await team.clients[EDITOR].post(f"{url}/{mine['id']}/no-show")
        by_member = await team.clients[MEMBER].post(f"{url}/{mine['id']}/no-show")

        assert problem_code(early, 409) == "shift_not_started"
        assert marked.status_code == 200, marked.text
        assert marked.json()["status"] == "no_show"
        assert problem_code(by_member, 403) == "permission_denied"
        (entry,) = (await team.clients[EDITOR].get(url)).json()["items"]
        assert (entry["status"], entry["no_show_count"]) == ("no_show", 1)

    async def test_roster_order_and_the_csv_export(self, team: Team, session: AsyncSession) -> None:
        team.users[ADMIN].display_name = "=HYPERLINK(evil)"
        await session.flush()
        shift = await _open_shift(team, capacity=1)
        url = signups_url(team.org.slug, shift)
        await team.clients[MEMBER].post(url, json={})
        await team.clients[AGENT].post(url, json={"waitlist": True})
        await team.clients[ADMIN].post(url, json={"waitlist": True})

        roster = (await team.clients[EDITOR].get(url)).json()
        exported = await team.clients[EDITOR].get(
            f"{events_url(team.org.slug)}/{shift['event_id']}/roster.csv"
        )

        assert [(r["status"], r["position"]) for r in roster["items"]] == [
            ("confirmed", None),
            ("waitlisted", 1),
            ("waitlisted", 2),
        ]
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [(r["name"], r["status"], r["position"]) for r in rows] == [
            ("Member Person", "confirmed", ""),
            ("Agent Person", "waitlisted", "1"),
            ("'=HYPERLINK(evil)", "waitlisted", "2"),
        ]
        assert rows[0]["email"] == team.users[MEMBER].email
        assert datetime.fromisoformat(rows[0]["shift_starts_at"]) == datetime.fromisoformat(
            shift["starts_at"]
        )
        members_roster = await team.clients[MEMBER].get(url)
        assert problem_code(members_roster, 403) == "permission_denied"


class TestTenancy:
    async def test_another_orgs_signup_and_shift_are_not_found_and_unchanged(
        self, team: Team, session: AsyncSession
    ) -> None:
        their_event = await make_event(team.outsider_client, team.other_org.slug)
        their_shift = await make_shift(team.outsider_client, team.other_org.slug, their_event)
        theirs_url = signups_url(team.other_org.slug, their_shift)
        signup = (await team.outsider_client.post(theirs_url, json={})).json()
        # The other org's ids, addressed through this org's path.
        mine = signups_url(team.org.slug, their_shift)

        cancel = await team.clients[EDITOR].delete(f"{mine}/{signup['id']}")
        no_show = await team.clients[EDITOR].post(f"{mine}/{signup['id']}/no-show")
        roster = await team.clients[EDITOR].get(mine)
        join = await team.clients[MEMBER].post(mine, json={})

        for response in (cancel, no_show, roster, join):
            assert problem_code(response, 404) == "event_not_found"
        still = (await team.outsider_client.get(theirs_url)).json()["items"]
        assert [(s["id"], s["status"]) for s in still] == [(signup["id"], "confirmed")]
