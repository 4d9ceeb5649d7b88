"""Promotion from the waiting list, with its email read back from a real SMTP server."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import RolledBackDatabase, make_settings
from tests.email.servers import SmtpServer
from tests.events.helpers import in_days, make_event, make_shift, signups_url
from tests.orgs.conftest import Team
from townsquare.email.delivery import deliver_batch
from townsquare.orgs.enums import MemberRole


async def test_the_first_on_the_list_is_promoted_and_emailed(
    team: Team, session: AsyncSession, db: RolledBackDatabase, smtp_server: SmtpServer
) -> None:
    slug, editor = team.org.slug, team.clients[MemberRole.editor]
    team.users[MemberRole.agent].display_name = "Ana <b>Agent</b>"
    await session.flush()
    event = await make_event(
        editor, slug, starts_at=in_days(4), title="Riverside clean-up", timezone="Europe/Paris"
    )
    shift = await make_shift(editor, slug, event, capacity=1, title="Litter pickers")
    url = signups_url(slug, shift)
    placed = (await team.clients[MemberRole.member].post(url, json={})).json()
    first = (await team.clients[MemberRole.agent].post(url, json={"waitlist": True})).json()
    second = (await team.clients[MemberRole.admin].post(url, json={"waitlist": True})).json()
    assert (first["position"], second["position"]) == (1, 2)

    cancelled = await team.clients[MemberRole.member].delete(f"{url}/{placed['id']}")
    assert cancelled.status_code == 204, cancelled.text
    delivered = await deliver_batch(db, make_settings(**smtp_server.settings()), worker_id="t")

    assert delivered == 1
    (message,) = smtp_server.messages
    assert message["To"] == team.users[MemberRole.agent].email
    assert "Litter pickers" in message["Subject"]
    assert "Riverside clean-up" in message["Subject"]
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert "Europe/Paris" in text.get_content()
    assert "Town hall" in text.get_content()
    assert "Ana &lt;b&gt;Agent&lt;/b&gt;" in html.get_content()
    roster = (await editor.get(url)).json()["items"]
    assert [(r["user"]["id"], r["status"], r["position"]) for r in roster] == [
        (str(team.users[MemberRole.agent].id), "confirmed", None),
        (str(team.users[MemberRole.admin].id), "waitlisted", 1),
    ]
