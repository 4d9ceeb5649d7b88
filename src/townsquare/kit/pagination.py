"""Offset pagination for management lists, keyset cursors for feeds."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Self, TypeVar, TypeVarTuple

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.errors import BadRequest

MAX_PER_PAGE = 100
T = TypeVar("T")
RowTs = TypeVarTuple("RowTs")


@dataclass(frozen=True)
class PageParams:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


async def page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 20,
) -> PageParams:
    return PageParams(page=page, per_page=per_page)


class Page(BaseModel, Generic[T]):
    """One page of a management list: `{"items", "page", "per_page", "total"}`."""

    items: list[T]
    page: int
    per_page: int
    total: int

    @classmethod
    def of(cls, items: Sequence[T], params: PageParams, total: int) -> Self:
        return cls(items=list(items), page=params.page, per_page=params.per_page, total=total)


async def paginate(
    session: AsyncSession, statement: Select[*RowTs], params: PageParams
) -> tuple[list[Any], int]:
    """One page of `statement`'s rows and the total number of rows, in one query.

    The total rides along as a window count; only a page past the end (no row to carry it)
    costs a second query. A statement of one entity gives the entities, one of several
    gives row tuples. `statement` must be ordered, so pages do not overlap.
    """
    total_column = func.count().over().label("_total")
    result = await session.execute(
        statement.add_columns(total_column).offset(params.offset).limit(params.per_page)
    )
    rows = result.all()
    if rows:
        total = int(rows[0][-1])
    elif params.offset == 0:
        total = 0
    else:
        counted = await session.scalar(
            select(func.count()).select_from(statement.order_by(None).subquery())
        )
        total = int(counted or 0)
    width = len(rows[0]) - 1 if rows else 0
    if width == 1:
        return [row[0] for row in rows], total
    return [tuple(row[:-1]) for row in rows], total


def encode_cursor(values: dict[str, Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """Decode a cursor made by `encode_cursor`; a malformed one is a 400 `invalid_cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor() from exc
    if not isinstance(value, dict):
        raise InvalidCursor()
    return value


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    title = "Invalid cursor"
    detail = "The cursor is malformed; start again from the first page."
