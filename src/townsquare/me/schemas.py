"""Response types of the signed-in person's views."""

from __future__ import annotations

from townsquare.auth import schemas as auth_schemas
from townsquare.orgs.schemas import MyOrganization


class Me(auth_schemas.User):
    """The signed-in user with every organization they belong to and their role in it."""

    organizations: list[MyOrganization]
