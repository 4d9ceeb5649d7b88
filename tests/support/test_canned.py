"""Canned responses: agents only, short codes unique per organization."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.conftest import Desk
from tests.support.test_conversations import problem


class TestCannedResponses:
    async def test_create_list_get_update_delete(self, desk: Desk) -> None:
        client = desk.clients["agent"]
        created = await client.post(
            desk.url("/canned-responses"), json={"short_code": "refund", "text": "We refund."}
        )
        assert created.status_code == 201, created.text
        canned_id = created.json()["id"]
        await client.post(
            desk.url("/canned-responses"), json={"short_code": "hello", "text": "Hi!"}
        )

        listed = (await client.get(desk.url("/canned-responses"))).json()
        assert [c["short_code"] for c in listed["items"]] == ["hello", "refund"]
        assert listed["total"] == 2
        found = (await client.get(desk.url("/canned-responses"), params={"q": "REFU"})).json()
        assert [c["short_code"] for c in found["items"]] == ["refund"]

        patched = await client.patch(
            desk.url(f"/canned-responses/{canned_id}"), json={"text": "Refunds take 5 days."}
        )
        assert patched.json()["short_code"] == "refund"
        assert patched.json()["text"] == "Refunds take 5 days."
        got = (await client.get(desk.url(f"/canned-responses/{canned_id}"))).json()
        assert got["text"] == "Refunds take 5 days."

        assert (await client.delete(desk.url(f"/canned-responses/{canned_id}"))).status_code == 204
        problem(
            await client.get(desk.url(f"/canned-responses/{canned_id}")),
            404,
            "canned_response_not_found",
        )

    async def test_a_short_code_is_unique_per_org(self, desk: Desk, session: AsyncSession) -> None:
        client = desk.clients["agent"]
        url = desk.url("/canned-responses")
        first = (await client.post(url, json={"short_code": "refund", "text": "a"})).json()
        other = (await client.post(url, json={"short_code": "other", "text": "b"})).json()

        problem(
            await client.post(url, json={"short_code": "refund", "text": "c"}),
            409,
            "short_code_taken",
        )
        clash = await client.patch(
            desk.url(f"/canned-responses/{other['id']}"), json={"short_code": "refund"}
        )
        problem(clash, 409, "short_code_taken")
        # Another organization may use the same code.
        elsewhere = await desk.clients["outsider"].post(
            desk.url("/canned-responses", org=desk.other_org),
            json={"short_code": "refund", "text": "d"},
        )
        assert elsewhere.status_code == 201
        assert (await client.get(desk.url(f"/canned-responses/{first['id']}"))).json()[
            "text"
        ] == "a"

    async def test_null_on_a_required_field_is_422(self, desk: Desk) -> None:
        client = desk.clients["agent"]
        created = (
            await client.post(desk.url("/canned-responses"), json={"short_code": "x", "text": "y"})
        ).json()
        for name in ("short_code", "text"):
            response = await client.patch(
                desk.url(f"/canned-responses/{created['id']}"), json={name: None}
            )
            assert response.status_code == 422
            assert name in [e["field"] for e in response.json()["errors"]]

    async def test_agents_only(self, desk: Desk) -> None:
        url = desk.url("/canned-responses")
        problem(await desk.clients["member"].get(url), 403, "permission_denied")
        problem(await desk.clients["customer"].get(url), 404, "organization_not_found")
        created = (
            await desk.clients["agent"].post(url, json={"short_code": "x", "text": "y"})
        ).json()
        # Not found through another organization's path.
        response = await desk.clients["outsider"].get(
            desk.url(f"/canned-responses/{created['id']}", org=desk.other_org)
        )
        problem(response, 404, "canned_response_not_found")

    async def test_codes_and_texts_are_validated(self, desk: Desk) -> None:
        url = desk.url("/canned-responses")
        for body in (
            {"short_code": "Has Space", "text": "y"},
            {"short_code": "x" * 33, "text": "y"},
            {"short_code": "x", "text": ""},
            {"short_code": "x"},
        ):
            assert (await desk.clients["agent"].post(url, json=body)).status_code == 422, body
