"""Response types of the signed-in person's views."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from townsquare.auth import schemas as auth_schemas
from townsquare.orgs.schemas import MyOrganization
from townsquare.support import schemas as support_schemas


class Me(auth_schemas.User):
    """The signed-in user with every organization they belong to and their role in it."""

    organizations: list[MyOrganization]


class ConversationOrganization(BaseModel):
    id: uuid.UUID
    slug: str
    name: str


class MyConversation(support_schemas.Conversation):
    """A conversation the user opened, as its customer sees it (never an internal note)."""

    organization: ConversationOrganization


class MyConversationPage(BaseModel):
    """Newest activity first; pass `next_cursor` as `?cursor=` for the next page."""

    items: list[MyConversation]
    next_cursor: str | None
