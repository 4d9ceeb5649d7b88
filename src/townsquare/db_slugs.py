"""The slug allocator: unique slugs from titles and names, safe under concurrent inserts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from townsquare.db import ErrorFactory, flush_or_conflict
from townsquare.kit.slugs import slugify, with_suffix

RowT = TypeVar("RowT")

SlugTakenFactory = Callable[[str], Exception]
"""Makes the 409 for a taken explicit slug, given a free `suggestion`."""
_GENERATED_SLUG_ATTEMPTS = 25
_SLUG_BATCH = 50


@dataclass(frozen=True)
class SlugScope:
    """Where a slug must be unique: a slug column, the rows it is unique among (`where`,
    such as one organization's), the unique constraint that enforces it, and the 409
    to answer when an explicit slug is taken."""

    column: InstrumentedAttribute[str]
    constraint: str
    max_length: int
    taken: SlugTakenFactory
    where: tuple[ColumnElement[bool], ...] = ()

    async def free_slug(self, session: AsyncSession, base: str) -> str:
        """`base`, or the first of `base-2`, `base-3`... that no row in scope uses yet.

        Candidates are looked up by value in batches: a long base is shortened to make room
        for its suffix, so a prefix search for `base-` would miss some of them."""
        start = 1
        while True:
            candidates = [
                base if n == 1 else with_suffix(base, n, self.max_length)
                for n in range(start, start + _SLUG_BATCH)
            ]
            taken = set(
                await session.scalars(
                    select(self.column).where(*self.where, self.column.in_(candidates))
                )
            )
            for candidate in candidates:
                if candidate not in taken:
                    return candidate
            start += _SLUG_BATCH

    async def taken_error(self, session: AsyncSession, slug: str) -> Exception:
        return self.taken(await self.free_slug(session, slug))

    async def insert(
        self,
        session: AsyncSession,
        make: Callable[[str], RowT],
        *,
        explicit: str | None,
        source_text: str,
        conflicts: Mapping[str, ErrorFactory] | None = None,
    ) -> RowT:
        """Insert the row `make(slug)`. A taken explicit slug answers `taken` with a free
        suggestion; a slug made from `source_text` moves on to the next free `-n` suffix,
        also when a concurrent insert took it first. `conflicts` maps the row's other
        unique constraints to their errors."""
        others = dict(conflicts or {})
        if explicit is not None:
            row = make(explicit)
            await flush_or_conflict(
                session,
                {**others, self.constraint: lambda: self.taken_error(session, explicit)},
                add=[row],
            )
            return row
        base = slugify(source_text, self.max_length)
        for attempt in range(_GENERATED_SLUG_ATTEMPTS + 1):
            if attempt < _GENERATED_SLUG_ATTEMPTS:
                slug = await self.free_slug(session, base)
            else:
                # Under heavy contention for one base, stop counting and make it unique.
                slug = with_suffix(base, uuid.uuid4().int % 10**8, self.max_length)
            row = make(slug)
            try:
                await flush_or_conflict(session, {**others, self.constraint: _SlugRace}, add=[row])
            except _SlugRace:
                continue
            return row
        raise self.taken(await self.free_slug(session, base))

    async def change(self, session: AsyncSession, row: Any, slug: str) -> None:
        """Give `row` the explicit `slug`; a taken one answers `taken` with a suggestion."""
        if row.slug == slug:
            return
        previous = row.slug

        def assign() -> None:
            row.slug = slug

        try:
            await flush_or_conflict(session, {self.constraint: _SlugRace}, apply=assign)
        except _SlugRace:
            row.slug = previous
            raise await self.taken_error(session, slug) from None


class _SlugRace(Exception):
    """A generated slug was taken between choosing it and inserting it."""
