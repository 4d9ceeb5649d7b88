"""The audit log in the service layer."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from types import ModuleType

from sqlalchemy.ext.asyncio import AsyncSession

from tests.orgs.helpers import FIRST_PAGE, org_context, org_with
from townsquare.orgs import audit
from townsquare.orgs.enums import MemberRole


class TestListAuditLog:
    async def test_newest_first_with_actor_names(
        self, session: AsyncSession, clock: ModuleType
    ) -> None:
        org, owner, (member,) = await org_with(session, MemberRole.member)
        await audit.record_unattended(session, org.id, "article.created")
        clock.travel(timedelta(seconds=1))
        await audit.record(
            session,
            await org_context(session, org, member),
            "article.published",
            target=("article", uuid.uuid4()),
            data={"title": "Hi"},
        )

        reader = await org_context(session, org, owner)
        items, total = await audit.list_entries(session, reader, FIRST_PAGE)
        published, published_total = await audit.list_entries(
            session, reader, FIRST_PAGE, action="article.published"
        )

        assert total == 2
        assert [i.action for i in items] == ["article.published", "article.created"]
        assert items[1].actor is None
        assert published_total == 1
        assert published[0].actor is not None
        assert published[0].actor.display_name == "member user"
        assert published[0].data == {"title": "Hi"}
        assert re.fullmatch(r"[0-9a-f-]{36}", published[0].target_id or "")
