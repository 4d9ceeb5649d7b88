"""`ROLE_PERMISSIONS` is the permission matrix of API.md, cell by cell (see permission_table.py)."""

from __future__ import annotations

import pytest

from tests.orgs.permission_table import PERMISSION_TABLE
from townsquare.orgs.enums import MemberRole, Permission
from townsquare.orgs.permissions import ROLE_PERMISSIONS, role_has


def _cell(role: str, permission: str) -> str:
    return "✓" if permission in PERMISSION_TABLE[role] else "-"


class TestRolePermissions:
    def test_every_role_is_in_the_table(self) -> None:
        assert sorted(role.value for role in ROLE_PERMISSIONS) == sorted(PERMISSION_TABLE)
        assert sorted(role.value for role in MemberRole) == sorted(PERMISSION_TABLE)

    def test_every_permission_is_placed_in_the_table(self) -> None:
        known = {permission.value for permission in Permission}
        in_table = set().union(*PERMISSION_TABLE.values())
        assert known - in_table == set(), "permissions nobody has: place them in the table"
        assert in_table - known == set(), "the table names permissions the app does not have"

    def test_role_permissions_are_the_matrix(self) -> None:
        actual = {
            role.value: frozenset(permission.value for permission in permissions)
            for role, permissions in ROLE_PERMISSIONS.items()
        }
        wrong = [
            f"{role} / {permission}: app {'✓' if permission in actual[role] else '-'}, "
            f"API.md {_cell(role, permission)}"
            for role in PERMISSION_TABLE
            for permission in sorted({p.value for p in Permission})
            if (permission in actual[role]) != (permission in PERMISSION_TABLE[role])
        ]
        assert not wrong, "ROLE_PERMISSIONS differs from the matrix: " + "; ".join(wrong)
        assert actual == PERMISSION_TABLE


@pytest.mark.parametrize("role", list(MemberRole), ids=str)
@pytest.mark.parametrize("permission", list(Permission), ids=str)
def test_role_has_answers_the_matrix(role: MemberRole, permission: Permission) -> None:
    assert role_has(role, permission) is (permission.value in PERMISSION_TABLE[role.value])
