"""Public reads: full-text search of articles and the old slugs that redirect.

PostgreSQL: the articles' weighted text vector as the stored generated column
`search_document`, and its GIN index `ix_articles_search`.
SQLite: the FTS5 table `article_search`, its triggers, and the existing articles in it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import townsquare.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As `townsquare.cms.models` declares them at this revision.
SEARCH_DDL = (
    "ALTER TABLE articles ADD COLUMN search_document tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple'::regconfig, title), 'A'::\"char\") || "
    "setweight(to_tsvector('simple'::regconfig, excerpt), 'B'::\"char\") || "
    "setweight(to_tsvector('simple'::regconfig, body), 'D'::\"char\")) STORED",
    "CREATE INDEX ix_articles_search ON articles USING gin (search_document)",
)
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


def upgrade() -> None:
    op.create_table(
        "article_old_slugs",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("article_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", townsquare.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_old_slugs_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_article_old_slugs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "slug", name=op.f("pk_article_old_slugs")),
    )
    op.create_index(
        op.f("ix_article_old_slugs_article_id"), "article_old_slugs", ["article_id"], unique=False
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in SEARCH_DDL:
            op.execute(statement)
    else:
        for statement in SQLITE_SEARCH_DDL:
            op.execute(statement)
        op.execute(
            f"INSERT INTO {ARTICLE_SEARCH_TABLE} (article_id, title, excerpt, body) "
            "SELECT id, title, excerpt, body FROM articles"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_articles_search", table_name="articles")
        op.drop_column("articles", "search_document")
    else:
        for trigger in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {ARTICLE_SEARCH_TABLE}_{trigger}")
        op.execute(f"DROP TABLE IF EXISTS {ARTICLE_SEARCH_TABLE}")
    op.drop_index(op.f("ix_article_old_slugs_article_id"), table_name="article_old_slugs")
    op.drop_table("article_old_slugs")
