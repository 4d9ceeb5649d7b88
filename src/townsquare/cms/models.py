"""Articles, their revisions, categories and tags.

The public read API pages published articles by keyset on `(published_at, id)`, newest
first (PostgreSQL and SQLite scan these ascending indexes backwards, and plain column
indexes keep Alembic's model/migration comparison exact):
`ix_articles_public_listing` serves the unfiltered list, `ix_articles_public_category`
the list of one category, and `ix_article_tags_public` the list of one tag — for that
one `article_tags.published_at` mirrors `articles.published_at` while the article is
published (NULL otherwise), kept in step by the service in the same transaction.

The public search (`?q=`) reads `ix_articles_search` on PostgreSQL, a GIN index of the
generated column `articles.search_document` (`POSTGRESQL_SEARCH_DDL`); on SQLite the FTS5
table `article_search`, kept in step with the articles by triggers (`SQLITE_SEARCH_DDL`).
Neither has a model: `described_by_models` keeps them out of Alembic's comparison.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DDL,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.cms.enums import ArticleStatus, RevisionReason
from townsquare.db import Base, Model, enum_column
from townsquare.kit import clock

TITLE_MAX = 200
SLUG_MAX = 200
EXCERPT_MAX = 1000
BODY_MAX = 200_000
CATEGORY_NAME_MAX = 100
CATEGORY_SLUG_MAX = 100
TAG_NAME_MAX = 64
TAG_SLUG_MAX = 64


class Category(Model):
    """A category of articles; categories nest through `parent_id` (never in a cycle)."""

    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("organization_id", "slug"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(CATEGORY_NAME_MAX))
    slug: Mapped[str] = mapped_column(String(CATEGORY_SLUG_MAX))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )


class Tag(Model):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("organization_id", "slug"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(TAG_NAME_MAX))
    slug: Mapped[str] = mapped_column(String(TAG_SLUG_MAX))


# Words only, no stemming: an org writes in its own language, and the `simple` configuration
# (like SQLite's unicode61 tokenizer) treats every language alike.
SEARCH_CONFIG = "simple"
SEARCH_WEIGHTS = (("title", "A"), ("excerpt", "B"), ("body", "D"))


# PostgreSQL: the weighted text search vector of an article, a stored generated column
# `articles.search_document` (no model column: SQLite has no tsvector) with the GIN index
# `ix_articles_search`. Stored, not an expression index: a word found in most articles
# would recompute every one's vector from its body on each search (seconds at 10,000).
# HTML tags in the body are dropped by PostgreSQL's parser (they are `tag` tokens).
SEARCH_DOCUMENT_COLUMN = "search_document"
SEARCH_INDEX = "ix_articles_search"
POSTGRESQL_SEARCH_DDL = (
    f"ALTER TABLE articles ADD COLUMN {SEARCH_DOCUMENT_COLUMN} tsvector GENERATED ALWAYS AS ("
    + " || ".join(
        f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, {column}), '{weight}'::\"char\")"
        for column, weight in SEARCH_WEIGHTS
    )
    + ") STORED",
    f"CREATE INDEX {SEARCH_INDEX} ON articles USING gin ({SEARCH_DOCUMENT_COLUMN})",
)


class Article(Model):
    """An article. `body` is sanitized HTML; `version` grows by one with every change."""

    __tablename__ = "articles"
    __table_args__ = (
        UniqueConstraint("organization_id", "slug"),
        Index(
            "ix_articles_public_listing",
            "organization_id",
            "status",
            "published_at",
            "id",
        ),
        Index(
            "ix_articles_public_category",
            "category_id",
            "status",
            "published_at",
            "id",
        ),
        # The scheduled-publishing sweep: only scheduled rows, by due time.
        Index(
            "ix_articles_scheduled_due",
            "scheduled_publish_at",
            postgresql_where=text("status = 'scheduled'"),
            sqlite_where=text("status = 'scheduled'"),
        ),
        Index("ix_articles_organization_id_updated_at", "organization_id", "updated_at"),
        Index("ix_articles_author_id", "author_id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    slug: Mapped[str] = mapped_column(String(SLUG_MAX))
    excerpt: Mapped[str] = mapped_column(String(EXCERPT_MAX), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ArticleStatus] = mapped_column(
        enum_column(ArticleStatus, "article_status"), default=ArticleStatus.draft
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL")
    )
    # SET NULL only as a safety net: deleting featured media answers 409 `media_in_use`.
    featured_media_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("media_items.id", ondelete="SET NULL")
    )
    published_at: Mapped[datetime | None]
    scheduled_publish_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)


class ArticleTag(Base):
    """An article's tag. `published_at` mirrors the article's while it is published."""

    __tablename__ = "article_tags"
    __table_args__ = (
        Index(
            "ix_article_tags_public",
            "tag_id",
            "published_at",
            "article_id",
        ),
    )

    article_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    published_at: Mapped[datetime | None]


class ArticleRevision(Base):
    """A snapshot of an article's title, excerpt and body; `number` counts per article."""

    __tablename__ = "article_revisions"
    __table_args__ = (UniqueConstraint("article_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    article_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    excerpt: Mapped[str] = mapped_column(String(EXCERPT_MAX))
    body: Mapped[str] = mapped_column(Text)
    reason: Mapped[RevisionReason] = mapped_column(enum_column(RevisionReason, "revision_reason"))
    editor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


# SQLite: an FTS5 table of the articles' text with the article's id (as stored) in its
# first column, indexed too, so that a trigger finds an article's row through the index
# (FTS5 rowids cannot follow `articles`: VACUUM may renumber a table's implicit rowids).
ARTICLE_SEARCH_TABLE = "article_search"
SQLITE_SEARCH_DDL = (
    f"CREATE VIRTUAL TABLE {ARTICLE_SEARCH_TABLE} USING fts5("
    "article_id, title, excerpt, body, tokenize = 'unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER {ARTICLE_SEARCH_TABLE}_insert AFTER INSERT ON articles BEGIN "
    f"INSERT INTO {ARTICLE_SEARCH_TABLE} (article_id, title, excerpt, body) "
    "VALUES (new.id, new.title, new.excerpt, new.body); END",
    f"CREATE TRIGGER {ARTICLE_SEARCH_TABLE}_update AFTER UPDATE OF title, excerpt, body "
    f"ON articles BEGIN DELETE FROM {ARTICLE_SEARCH_TABLE} WHERE rowid IN ("
    f"SELECT rowid FROM {ARTICLE_SEARCH_TABLE} WHERE {ARTICLE_SEARCH_TABLE} MATCH "
    "'article_id : \"' || old.id || '\"'); "
    f"INSERT INTO {ARTICLE_SEARCH_TABLE} (article_id, title, excerpt, body) "
    "VALUES (new.id, new.title, new.excerpt, new.body); END",
    f"CREATE TRIGGER {ARTICLE_SEARCH_TABLE}_delete AFTER DELETE ON articles BEGIN "
    f"DELETE FROM {ARTICLE_SEARCH_TABLE} WHERE rowid IN ("
    f"SELECT rowid FROM {ARTICLE_SEARCH_TABLE} WHERE {ARTICLE_SEARCH_TABLE} MATCH "
    "'article_id : \"' || old.id || '\"'); END",
)


def _ddl(statement: str, dialect: str) -> DDL:
    ddl: DDL = DDL(statement)  # type: ignore[no-untyped-call]
    return ddl.execute_if(dialect=dialect)


for _statement in SQLITE_SEARCH_DDL:
    event.listen(Article.__table__, "after_create", _ddl(_statement, "sqlite"))
for _statement in POSTGRESQL_SEARCH_DDL:
    event.listen(Article.__table__, "after_create", _ddl(_statement, "postgresql"))
event.listen(
    Article.__table__,
    "before_drop",
    _ddl(f"DROP TABLE IF EXISTS {ARTICLE_SEARCH_TABLE}", "sqlite"),
)


def is_search_table(name: str | None) -> bool:
    """The SQLite FTS5 table and its shadow tables, which no model describes."""
    return name is not None and (
        name == ARTICLE_SEARCH_TABLE or name.startswith(f"{ARTICLE_SEARCH_TABLE}_")
    )


def described_by_models(name: str | None, type_: str, parent_names: Any) -> bool:
    """For Alembic's `include_name`: False for the search objects no model describes
    (SQLite's FTS5 tables, PostgreSQL's generated search column and its index)."""
    if type_ == "table":
        return not is_search_table(name)
    if type_ == "column":
        return not (parent_names.get("table_name") == "articles" and name == SEARCH_DOCUMENT_COLUMN)
    if type_ == "index":
        return name != SEARCH_INDEX
    return True


class ArticleOldSlug(Base):
    """A slug the article had before: the public read of it answers 301 to the current one.
    One per org and slug (the latest article to leave it); an article that takes the slug
    itself wins over the redirect."""

    __tablename__ = "article_old_slugs"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    slug: Mapped[str] = mapped_column(String(SLUG_MAX), primary_key=True)
    article_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
