"""`EVENTS_NO_SHOW_LIMIT`: a member whose no-shows in an org reached it cannot sign up
there any more (409 `signup_blocked`), and still can in another org."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, make_settings
from tests.events.helpers import in_days, make_event, make_shift, problem_code, signups_url
from tests.factories import add_member
from tests.orgs.conftest import Team
from townsquare.kit import clock as app_clock
from townsquare.main import create_app
from townsquare.orgs.enums import MemberRole

LIMIT = 2


@pytest.fixture
def app(db: RolledBackDatabase) -> FastAPI:
    return create_app(make_settings(EVENTS_NO_SHOW_LIMIT=LIMIT), database=db)


async def test_the_limit_blocks_signups_in_that_org_only(
    team: Team, session: AsyncSession, clock: ModuleType
) -> None:
    slug, editor, member = (
        team.org.slug,
        team.clients[MemberRole.editor],
        team.clients[MemberRole.member],
    )
    start = in_days(1)
    event = await make_event(editor, slug, starts_at=start, hours=48)
    missed = [
        await make_shift(editor, slug, event, offset_hours=4 * n, hours=2, title=f"Missed {n}")
        for n in range(LIMIT)
    ]
    later = await make_shift(editor, slug, event, offset_hours=40, hours=2, title="Later")
    signups = [(await member.post(signups_url(slug, s), json={})).json() for s in missed]
    await add_member(session, team.other_org, team.users[MemberRole.member], MemberRole.member)
    elsewhere = await make_event(
        team.outsider_client, team.other_org.slug, starts_at=start, hours=48
    )
    their_shift = await make_shift(
        team.outsider_client, team.other_org.slug, elsewhere, offset_hours=30
    )

    clock.travel(start - app_clock.now() + timedelta(hours=4 * LIMIT))
    for shift, signup in zip(missed[:-1], signups[:-1], strict=True):
        marked = await editor.post(f"{signups_url(slug, shift)}/{signup['id']}/no-show")
        assert marked.status_code == 200, marked.text
    below_limit = await member.post(signups_url(slug, later), json={})
    assert below_limit.status_code == 201, below_limit.text
    assert (
        await member.delete(f"{signups_url(slug, later)}/{below_limit.json()['id']}")
    ).status_code == 204
    await editor.post(f"{signups_url(slug, missed[-1])}/{signups[-1]['id']}/no-show")

    blocked = await member.post(signups_url(slug, later), json={"waitlist": True})
    other_org = await member.post(signups_url(team.other_org.slug, their_shift), json={})

    assert problem_code(blocked, 409) == "signup_blocked"
    assert other_org.status_code == 201, other_org.text
