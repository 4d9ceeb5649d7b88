"""Benchmark data for the public CMS reads: one org, its authors, categories, tags, articles.

Run (from the repository root):

    .venv/bin/python bench/cms_data.py                       # 10,000 articles into ts_bench
    .venv/bin/python bench/cms_data.py --articles 1000000 \
        --url postgresql://postgres@127.0.0.1:5432/ts_bench_1m --body-bytes 600

What it writes (deterministic for a given --seed):
- one organization `bench` with the modules cms, events and support on;
- 50 users (the authors) and their memberships (one owner, 49 editors);
- 20 categories, 100 tags;
- N articles (default 10,000): ~3 KB sanitized-looking HTML bodies (--body-bytes), a
  category each, 0-5 tags each, an author each; 90% published with `published_at`
  spread over three years, the rest drafts, archived or scheduled (no `published_at`);
- `article_tags` rows, with the `published_at` mirror column set like the CMS service
  keeps it (the article's while it is published, NULL otherwise).
Revisions, audit entries and sessions are not written: no public read touches them.

The database is dropped and created again, the schema comes from `townsquare migrate`
when Alembic revisions exist (else, or if that fails, from `Base.metadata.create_all`),
rows go in with asyncpg COPY (secondary indexes of the two big tables are dropped during
the load and built again after it), then VACUUM ANALYZE. A JSON marker in the database's
comment records what was loaded (sizes, seed, schema fingerprint): a later run with the
same parameters and the same models skips the load (`--reload` forces it).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from townsquare.db import Base
from townsquare.models import import_all_models

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/ts_bench"
ORG_SLUG = "bench"
AUTHORS = 50
CATEGORIES = 20
TAGS = 100
MAX_TAGS_PER_ARTICLE = 5
PUBLISHED_SHARE = 0.90
SPREAD = timedelta(days=3 * 365)
CHUNK = 20_000
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
FORMAT_VERSION = 1

_WORDS_TEXT = (
    "town square market council river bridge library school garden festival volunteer "
    "harbour museum theatre concert park station street corner bakery neighbour winter "
    "summer spring autumn meeting report budget plan vote repair road bicycle path forest "
    "hill lake shore lantern evening morning children elders community kitchen choir "
    "exhibition workshop craft painting photograph history archive map letter story "
    "weather storm sunshine harvest orchard apple pear cherry bread cheese coffee tea "
    "music dance football tennis swimming running walking night stars bells clock tower "
    "window door roof chimney bridge ferry island village city county region mayor "
    "election debate petition grant funding donation charity shelter clinic pharmacy"
)
WORDS = _WORDS_TEXT.split()


# --- connection strings -----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A PostgreSQL database on loopback, as asyncpg and SQLAlchemy spell it."""

    dsn: str  # postgresql://user@host:port/db

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in ("postgresql", "postgres"):
            raise SystemExit(f"not a PostgreSQL URL: {url}")
        if parts.hostname not in LOOPBACK:
            raise SystemExit(f"the benchmark only talks to loopback, not {parts.hostname}")
        if not parts.path.strip("/"):
            raise SystemExit(f"no database name in {url}")
        return cls(urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, "")))

    @property
    def name(self) -> str:
        return urlsplit(self.dsn).path.strip("/")

    @property
    def sqlalchemy_url(self) -> str:
        return "postgresql+asyncpg" + self.dsn[len("postgresql") :]

    @property
    def maintenance_dsn(self) -> str:
        parts = urlsplit(self.dsn)
        return urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))


# --- what is loaded -----------------------------------------------------------------------


def schema_fingerprint() -> str:
    """Changes when a table, column, type or index of the models, or a migration, changes."""
    import_all_models()
    digest = hashlib.sha256()
    for table in sorted(Base.metadata.tables.values(), key=lambda t: t.name):
        digest.update(table.name.encode())
        for column in table.columns:
            digest.update(f"{column.name}:{column.type}:{column.nullable}".encode())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            digest.update(f"{index.name}:{[c.name for c in index.columns]}".encode())
    versions = REPO / "src" / "townsquare" / "migrations" / "versions"
    for path in sorted(versions.glob("*.py")):
        digest.update(path.name.encode())
    return digest.hexdigest()[:16]


def wanted_marker(articles: int, body_bytes: int, seed: int) -> dict[str, Any]:
    return {
        "townsquare_bench": FORMAT_VERSION,
        "org": ORG_SLUG,
        "articles": articles,
        "body_bytes": body_bytes,
        "seed": seed,
        "schema": schema_fingerprint(),
    }


async def current_marker(target: Target) -> dict[str, Any] | None:
    try:
        conn = await asyncpg.connect(target.dsn, timeout=10)
    except (asyncpg.InvalidCatalogNameError, OSError):
        return None
    try:
        text = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    if not text:
        return None
    try:
        marker = json.loads(text)
    except ValueError:
        return None
    return marker if isinstance(marker, dict) else None


# --- schema ---------------------------------------------------------------------------------


async def recreate_database(target: Target) -> None:
    conn = await asyncpg.connect(target.maintenance_dsn, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{target.name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{target.name}"')
    finally:
        await conn.close()


def _has_migrations() -> bool:
    versions = REPO / "src" / "townsquare" / "migrations" / "versions"
    return any(p.name != "__init__.py" for p in versions.glob("*.py"))


def _migrate(target: Target) -> bool:
    """`townsquare migrate`; False when there are no revisions yet or it failed."""
    if not _has_migrations():
        print("schema: no Alembic revisions yet, using Base.metadata.create_all")
        return False
    command = Path(sys.executable).with_name("townsquare")
    env = {**os.environ, "TOWNSQUARE_DATABASE_URL": target.sqlalchemy_url}
    try:
        done = subprocess.run(
            [str(command), "migrate"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"schema: `townsquare migrate` did not run ({exc}); using create_all")
        return False
    if done.returncode != 0:
        print(f"schema: `townsquare migrate` failed; using create_all\n{done.stderr[-2000:]}")
        return False
    print("schema: townsquare migrate")
    return True


async def _create_all(target: Target) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    import_all_models()
    engine = create_async_engine(target.sqlalchemy_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()


async def create_schema(target: Target) -> None:
    if not await asyncio.to_thread(_migrate, target):
        await recreate_database(target)
        await _create_all(target)
    conn = await asyncpg.connect(target.dsn, timeout=10)
    try:
        if await conn.fetchval("SELECT to_regclass('articles')") is None:
            raise SystemExit("schema: no `articles` table after migrating")
    finally:
        await conn.close()


# --- rows -----------------------------------------------------------------------------------


class Rows:
    """Deterministic rows; every id comes from the seeded generator."""

    def __init__(self, seed: int, articles: int, body_bytes: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.count = articles
        self.body_bytes = body_bytes
        self.now = now
        self.org_id = self.uuid()
        self.user_ids = [self.uuid() for _ in range(AUTHORS)]
        self.category_ids = [self.uuid() for _ in range(CATEGORIES)]
        self.tag_ids = [self.uuid() for _ in range(TAGS)]
        self.sentences = [self._sentence() for _ in range(400)]
        self.blocks = self._blocks()

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _words(self, n: int) -> list[str]:
        return self.rng.choices(WORDS, k=n)

    def _sentence(self) -> str:
        words = self._words(self.rng.randint(8, 18))
        return " ".join(words).capitalize() + "."

    def _blocks(self) -> list[str]:
        """HTML blocks as the sanitizer leaves them: paragraphs, headings, lists, links."""
        blocks: list[str] = []
        for i in range(300):
            kind = i % 6
            if kind == 0:
                blocks.append(f"<h2>{' '.join(self._words(4)).capitalize()}</h2>")
            elif kind == 1:
                items = "".join(f"<li>{s}</li>" for s in self.rng.sample(self.sentences, 3))
                blocks.append(f"<ul>{items}</ul>")
            elif kind == 2:
                word = self.rng.choice(WORDS)
                link = f'<a href="https://example.org/{word}" rel="noopener noreferrer">{word}</a>'
                blocks.append(f"<p>{self.rng.choice(self.sentences)} See {link}.</p>")
            else:
                text = " ".join(self.rng.sample(self.sentences, 3))
                if kind == 3:
                    text = f"<strong>{text[:40]}</strong>{text[40:]}"
                blocks.append(f"<p>{text}</p>")
        return blocks

    def body(self) -> str:
        parts: list[str] = []
        size = 0
        while size < self.body_bytes:
            block = self.rng.choice(self.blocks)
            parts.append(block)
            size += len(block)
        return "".join(parts)

    # --- tables ---

    def organizations(self) -> list[dict[str, Any]]:
        at = self.now - SPREAD - timedelta(days=30)
        return [
            {
                "id": self.org_id,
                "name": "Bench Gazette",
                "slug": ORG_SLUG,
                "avatar_url": None,
                "timezone": "UTC",
                "created_at": at,
                "updated_at": at,
            }
        ]

    def organization_modules(self) -> list[dict[str, Any]]:
        return [{"organization_id": self.org_id, "module": m} for m in ("cms", "events", "support")]

    def users(self) -> list[dict[str, Any]]:
        at = self.now - SPREAD - timedelta(days=30)
        first = ("Ada", "Bo", "Cai", "Dana", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun")
        last = ("Moreau", "Okafor", "Lindqvist", "Tanaka", "Silva")
        return [
            {
                "id": user_id,
                "email": f"author{i:02d}@bench.example",
                "display_name": f"{first[i % 10]} {last[i // 10]}",
                "timezone": "UTC",
                "avatar_url": None,
                "password_hash": "!bench-no-login",
                "is_staff": False,
                "is_active": True,
                "email_verified_at": at,
                "last_login_at": None,
                "created_at": at,
                "updated_at": at,
            }
            for i, user_id in enumerate(self.user_ids)
        ]

    def memberships(self) -> list[dict[str, Any]]:
        at = self.now - SPREAD - timedelta(days=30)
        return [
            {
                "id": self.uuid(),
                "organization_id": self.org_id,
                "user_id": user_id,
                "role": "owner" if i == 0 else "editor",
                "created_at": at,
                "updated_at": at,
            }
            for i, user_id in enumerate(self.user_ids)
        ]

    def categories(self) -> list[dict[str, Any]]:
        at = self.now - SPREAD - timedelta(days=30)
        return [
            {
                "id": category_id,
                "organization_id": self.org_id,
                "name": f"{WORDS[i].capitalize()} news",
                "slug": f"{WORDS[i]}-news",
                "parent_id": None,
                "created_at": at,
                "updated_at": at,
            }
            for i, category_id in enumerate(self.category_ids)
        ]

    def tags(self) -> list[dict[str, Any]]:
        at = self.now - SPREAD - timedelta(days=30)
        return [
            {
                "id": tag_id,
                "organization_id": self.org_id,
                "name": f"{WORDS[i % len(WORDS)].capitalize()} {i}",
                "slug": f"{WORDS[i % len(WORDS)]}-{i}",
                "created_at": at,
                "updated_at": at,
            }
            for i, tag_id in enumerate(self.tag_ids)
        ]

    def articles(self, start: int, stop: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Articles `start..stop-1` and their article_tags rows."""
        rng = self.rng
        spread_us = int(SPREAD.total_seconds() * 1_000_000)
        articles: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        for n in range(start, stop):
            article_id = self.uuid()
            words = self._words(rng.randint(4, 9))
            title = " ".join(words).capitalize()
            slug = "-".join(words) + f"-{n}"
            roll = rng.random()
            created = self.now - timedelta(microseconds=rng.randrange(spread_us))
            published_at = scheduled = None
            if roll < PUBLISHED_SHARE:
                status = "published"
                published_at = created + timedelta(seconds=rng.randint(60, 3 * 86400))
                published_at = min(published_at, self.now - timedelta(seconds=1))
                updated, version = published_at, 2
            elif roll < PUBLISHED_SHARE + 0.04:
                status, updated, version = "draft", created, 1
            elif roll < PUBLISHED_SHARE + 0.07:
                status, updated, version = "archived", created + timedelta(days=1), 3
            else:
                status, version = "scheduled", 1
                updated = created
                scheduled = self.now + timedelta(days=30 + rng.randint(0, 365))
            articles.append(
                {
                    "id": article_id,
                    "organization_id": self.org_id,
                    "title": title,
                    "slug": slug,
                    "excerpt": " ".join(rng.sample(self.sentences, 2)),
                    "body": self.body(),
                    "status": status,
                    "author_id": rng.choice(self.user_ids),
                    "category_id": rng.choice(self.category_ids),
                    "featured_media_id": None,
                    "published_at": published_at,
                    "scheduled_publish_at": scheduled,
                    "version": version,
                    "created_at": created,
                    "updated_at": updated,
                }
            )
            for tag_id in rng.sample(self.tag_ids, rng.randint(0, MAX_TAGS_PER_ARTICLE)):
                links.append(
                    {
                        "article_id": article_id,
                        "tag_id": tag_id,
                        "organization_id": self.org_id,
                        "published_at": published_at,
                    }
                )
        return articles, links


# --- loading --------------------------------------------------------------------------------


def _column_filler(
    table_name: str,
) -> tuple[list[str], Callable[[dict[str, Any]], tuple[Any, ...]]]:
    """The table's columns, and a function making a COPY record of a row dict. A column the
    generator does not know gets its scalar model default, or NULL when nullable."""
    table = Base.metadata.tables[table_name]
    names = [c.name for c in table.columns]
    fallback: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if default is not None and getattr(default, "is_scalar", False):
            value = default.arg  # type: ignore[attr-defined]
            fallback[column.name] = getattr(value, "value", value)
        elif column.nullable or column.server_default is not None:
            fallback[column.name] = None
    missing = object()

    def record(row: dict[str, Any]) -> tuple[Any, ...]:
        values = []
        for name in names:
            value = row.get(name, missing)
            if value is missing:
                if name not in fallback:
                    raise SystemExit(
                        f"{table_name}.{name} is new and NOT NULL: teach bench/cms_data.py"
                    )
                value = fallback[name]
            values.append(value)
        return tuple(values)

    return names, record


async def _copy(conn: asyncpg.Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    names, record = _column_filler(table)
    await conn.copy_records_to_table(table, records=[record(r) for r in rows], columns=names)


async def _secondary_indexes(conn: asyncpg.Connection, tables: Sequence[str]) -> list[Any]:
    """Indexes that back no constraint (they can be dropped and built after the load)."""
    rows: list[Any] = await conn.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        WHERE i.indrelid = ANY($1::regclass[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        list(tables),
    )
    return rows


def _progress(done: int, total: int, started: float) -> None:
    rate = done / max(time.monotonic() - started, 1e-9)
    print(f"\r  articles {done:>9,}/{total:,}  ({rate:,.0f}/s)", end="", flush=True)


async def load(target: Target, articles: int, body_bytes: int, seed: int) -> None:
    started = time.monotonic()
    await recreate_database(target)
    await create_schema(target)
    rows = Rows(seed, articles, body_bytes, datetime.now(UTC).replace(microsecond=0))
    conn = await asyncpg.connect(target.dsn, timeout=10)
    try:
        await conn.execute("SET synchronous_commit = off")
        async with conn.transaction():
            await _copy(conn, "organizations", rows.organizations())
            await _copy(conn, "organization_modules", rows.organization_modules())
            await _copy(conn, "users", rows.users())
            await _copy(conn, "memberships", rows.memberships())
            await _copy(conn, "categories", rows.categories())
            await _copy(conn, "tags", rows.tags())
        big = ["articles", "article_tags"]
        indexes = await _secondary_indexes(conn, big)
        for index in indexes:
            await conn.execute(f"DROP INDEX {index['name']}")
        loaded = 0
        while loaded < articles:
            stop = min(loaded + CHUNK, articles)
            chunk, links = rows.articles(loaded, stop)
            async with conn.transaction():
                await _copy(conn, "articles", chunk)
                await _copy(conn, "article_tags", links)
            loaded = stop
            _progress(loaded, articles, started)
        print()
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for index in indexes:
            await conn.execute(index["definition"])
        print(f"  indexes rebuilt ({len(indexes)}); VACUUM ANALYZE ...")
        await conn.execute("VACUUM (ANALYZE)")
        marker = json.dumps(wanted_marker(articles, body_bytes, seed))
        await conn.execute(
            f'COMMENT ON DATABASE "{target.name}" IS {_quote(marker)}',
        )
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await conn.close()
    print(f"loaded {articles:,} articles into {target.name} ({size}) in {_since(started)}")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"


async def ensure_loaded(
    target: Target, *, articles: int, body_bytes: int, seed: int, reload: bool = False
) -> bool:
    """Load unless the database already holds this data set; True when it loaded."""
    wanted = wanted_marker(articles, body_bytes, seed)
    if not reload and await current_marker(target) == wanted:
        print(f"data: {target.name} already holds {articles:,} articles (marker matches)")
        return False
    print(f"data: loading {articles:,} articles (~{body_bytes} B bodies) into {target.name}")
    await load(target, articles, body_bytes, seed)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL database (loopback)")
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--body-bytes", type=int, default=3000, help="approximate body size")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--reload", action="store_true", help="load even if already loaded")
    args = parser.parse_args()
    asyncio.run(
        ensure_loaded(
            Target.parse(args.url),
            articles=args.articles,
            body_bytes=args.body_bytes,
            seed=args.seed,
            reload=args.reload,
        )
    )


if __name__ == "__main__":
    main()
