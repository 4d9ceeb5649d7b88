"""The public reads' SQL: prebuilt SQLAlchemy Core statements, one set per dialect.

Building a statement costs more than running it, so each is built once and kept under the
key the read pool caches its compiled SQL by (`townsquare.read_pool`). The hot ones (an
article by slug, the unfiltered list) are built up front; a filtered list or feed (a
category with its subcategories, a tag, a search, any of them together) on first use.

Listings page by keyset, newest first on `(published_at, id)`; a search ranks first,
on `(rank, published_at, id)`, where rank is PostgreSQL's `ts_rank` of the weighted text
vector or SQLite's FTS5 `bm25` (negated, so that higher is better on both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    JSON,
    REAL,
    Float,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    column,
    exists,
    func,
    literal_column,
    select,
    table,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR, array
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CTE, Subquery

from townsquare.auth.models import User
from townsquare.cms.enums import ArticleStatus
from townsquare.cms.models import (
    ARTICLE_SEARCH_TABLE,
    SEARCH_CONFIG,
    SEARCH_DOCUMENT_COLUMN,
    Article,
    ArticleOldSlug,
    ArticleTag,
    Category,
    Tag,
)
from townsquare.orgs.enums import Module
from townsquare.orgs.models import Organization, OrganizationModule
from townsquare.read_pool import ReadStatement

FEED_ENTRIES = 50

articles = cast(Table, Article.__table__)
article_tags = cast(Table, ArticleTag.__table__)
old_slugs = cast(Table, ArticleOldSlug.__table__)
categories = cast(Table, Category.__table__)
tags = cast(Table, Tag.__table__)
users = cast(Table, User.__table__)
organizations = cast(Table, Organization.__table__)
organization_modules = cast(Table, OrganizationModule.__table__)
article_search = table(ARTICLE_SEARCH_TABLE, column("article_id"), column("rowid"))

# The org named in the path, if it exists and has the cms module on.
_public_org_id = (
    select(organizations.c.id)
    .join(
        organization_modules,
        and_(
            organization_modules.c.organization_id == organizations.c.id,
            organization_modules.c.module == Module.cms,
        ),
    )
    .where(organizations.c.slug == bindparam("org"))
    .scalar_subquery()
)


def _tags(dialect: str) -> ColumnElement[Any]:
    """The article's tags as `[slug, name]` pairs: a two-dimensional text array on
    PostgreSQL (NULL when none), which asyncpg decodes into lists without a JSON parse in
    Python; a JSON array of arrays on SQLite."""
    agg: ColumnElement[Any]
    if dialect == "postgresql":
        agg = func.array_agg(array([tags.c.slug, tags.c.name]), type_=ARRAY(Text, dimensions=2))
    else:
        agg = func.json_group_array(func.json_array(tags.c.slug, tags.c.name), type_=JSON)
    return (
        select(agg)
        .select_from(article_tags.join(tags, tags.c.id == article_tags.c.tag_id))
        .where(article_tags.c.article_id == articles.c.id)
        .scalar_subquery()
    )


def _item_columns(dialect: str) -> list[ColumnElement[Any]]:
    return [
        articles.c.id,
        articles.c.slug,
        articles.c.title,
        articles.c.excerpt,
        articles.c.published_at,
        articles.c.updated_at,
        articles.c.author_id,
        users.c.display_name.label("author_name"),
        categories.c.slug.label("category_slug"),
        categories.c.name.label("category_name"),
        _tags(dialect).label("tags"),
    ]


# What else the article's validators (ETag, Last-Modified) depend on.
_VALIDATOR_COLUMNS = (
    users.c.updated_at.label("author_updated_at"),
    categories.c.updated_at.label("category_updated_at"),
)


def _joined(source: Any) -> Any:
    return source.outerjoin(users, users.c.id == articles.c.author_id).outerjoin(
        categories, categories.c.id == articles.c.category_id
    )


def _is_published() -> ColumnElement[bool]:
    return and_(
        articles.c.organization_id == _public_org_id,
        articles.c.status == ArticleStatus.published,
    )


def _newest_first() -> tuple[ColumnElement[Any], ...]:
    return (articles.c.published_at.desc(), articles.c.id.desc())


def _after(order: Sequence[ColumnElement[Any]]) -> ColumnElement[bool]:
    """Keyset condition: rows after the cursor's `([rank,] published_at, id)`."""
    names: tuple[str, ...] = ("after_published_at", "after_id")
    types: tuple[Any, ...] = (articles.c.published_at.type, articles.c.id.type)
    if len(order) == 3:
        names, types = ("after_rank", *names), (order[0].type, *types)
    return tuple_(*order) < tuple_(
        *(bindparam(name, type_=type_) for name, type_ in zip(names, types, strict=True))
    )


def _category_tree() -> CTE:
    """The ids of the category named by `:category` in the public org and of every
    category below it (categories never form a cycle; UNION would stop one anyway)."""
    tree = (
        select(categories.c.id)
        .where(
            categories.c.organization_id == _public_org_id,
            categories.c.slug == bindparam("category"),
        )
        .cte("category_tree", recursive=True)
    )
    child = categories.alias("child")
    return tree.union(select(child.c.id).join(tree, child.c.parent_id == tree.c.id))


def _tag_id() -> Any:
    return (
        select(tags.c.id)
        .where(tags.c.organization_id == _public_org_id, tags.c.slug == bindparam("tag"))
        .scalar_subquery()
    )


def _in_category() -> ColumnElement[bool]:
    return articles.c.category_id.in_(select(_category_tree().c.id))


def _has_tag() -> ColumnElement[bool]:
    return exists().where(
        article_tags.c.article_id == articles.c.id, article_tags.c.tag_id == _tag_id()
    )


def _rank(dialect: str) -> tuple[ColumnElement[Any], ColumnElement[bool], Any]:
    """The search's rank (higher is better), its match condition and what to select it
    from. `:q` is the search as typed on PostgreSQL, an FTS5 query on SQLite."""
    if dialect == "postgresql":
        document = literal_column(f"articles.{SEARCH_DOCUMENT_COLUMN}", type_=TSVECTOR)
        query = func.websearch_to_tsquery(
            literal_column(f"'{SEARCH_CONFIG}'::regconfig"), bindparam("q", type_=Text)
        )
        return func.ts_rank(document, query, type_=REAL), document.op("@@")(query), articles
    rank = -func.bm25(literal_column(ARTICLE_SEARCH_TABLE), 0.0, 10.0, 5.0, 1.0, type_=Float)
    match = literal_column(ARTICLE_SEARCH_TABLE).op("MATCH")(bindparam("q", type_=Text))
    source = article_search.join(articles, articles.c.id == article_search.c.article_id)
    return rank, match, source


class Statements:
    """The statements of one dialect (see the module's docstring)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.columns = columns = _item_columns(dialect)
        after = _after([articles.c.published_at, articles.c.id])
        base = select(*columns).select_from(_joined(articles)).where(_is_published())
        article = (
            select(*columns, *_VALIDATOR_COLUMNS)
            .select_from(_joined(articles))
            .where(_is_published(), articles.c.slug == bindparam("slug"))
            .limit(1)
        )
        self.article = _read("article", article.add_columns(articles.c.body))
        self.article_validators = _read("article_validators", article)
        self.first_page = _read(
            "first_page", base.order_by(*_newest_first()).limit(bindparam("limit"))
        )
        self.next_page = _read(
            "next_page", base.where(after).order_by(*_newest_first()).limit(bindparam("limit"))
        )
        self.old_slug = _read(
            "old_slug",
            select(articles.c.slug)
            .select_from(old_slugs.join(articles, articles.c.id == old_slugs.c.article_id))
            .where(
                old_slugs.c.organization_id == _public_org_id,
                old_slugs.c.slug == bindparam("slug"),
                articles.c.status == ArticleStatus.published,
            ),
        )
        self.org = _read(
            "org",
            select(organizations.c.id, organizations.c.name)
            .join(
                organization_modules,
                and_(
                    organization_modules.c.organization_id == organizations.c.id,
                    organization_modules.c.module == Module.cms,
                ),
            )
            .where(organizations.c.slug == bindparam("org")),
        )
        modules: ColumnElement[Any]
        if dialect == "postgresql":
            modules = func.array_agg(organization_modules.c.module.cast(Text))
        else:
            modules = func.json_group_array(organization_modules.c.module, type_=JSON)
        self.org_profile = _read(
            "org_profile",
            select(
                organizations.c.name,
                organizations.c.slug,
                organizations.c.avatar_url,
                organizations.c.timezone,
                organizations.c.updated_at,
                select(modules)
                .where(organization_modules.c.organization_id == organizations.c.id)
                .scalar_subquery()
                .label("modules"),
            ).where(organizations.c.slug == bindparam("org")),
        )
        self._built: dict[str, ReadStatement] = {}

    def listing(self, *, category: bool, tag: bool, search: bool, first: bool) -> ReadStatement:
        """A page of a filtered list (at least one of the filters)."""
        key = (
            f"list.{'c' if category else ''}{'t' if tag else ''}{'q' if search else ''}"
            f".{'first' if first else 'next'}"
        )
        found = self._built.get(key)
        if found is None:
            found = self._built[key] = _read(key, self._listing(category, tag, search, first))
        return found

    def feed(self, *, category: bool, tag: bool) -> ReadStatement:
        """The newest published articles (with body) for the Atom feed."""
        key = f"feed.{'c' if category else ''}{'t' if tag else ''}"
        found = self._built.get(key)
        if found is None:
            conditions = [_is_published()]
            if category:
                conditions.append(_in_category())
            if tag:
                conditions.append(_has_tag())
            statement = (
                select(*self.columns, articles.c.body)
                .select_from(_joined(articles))
                .where(*conditions)
                .order_by(*_newest_first())
                .limit(FEED_ENTRIES)
            )
            found = self._built[key] = _read(key, statement)
        return found

    def _listing(self, category: bool, tag: bool, search: bool, first: bool) -> Select[Any]:
        """First the page's keys from the index that serves them, then the rows joined to
        the keys by primary key, so that a deep page costs what page 1 costs. The keys are
        the org's already (its category, tag or search); the outer query checks the status
        again and adds no org condition, which would tempt the planner away from the
        primary key."""
        if search:
            rank, match, source = _rank(self.dialect)
            conditions = [_is_published(), match]
            if category:
                conditions.append(_in_category())
            if tag:
                conditions.append(_has_tag())
            hits: Subquery = (
                select(
                    articles.c.id.label("id"),
                    articles.c.published_at.label("published_at"),
                    rank.label("rank"),
                )
                .select_from(source)
                .where(*conditions)
                .subquery("hits")
            )
            order = [hits.c.rank, hits.c.published_at, hits.c.id]
            keys = select(*order)
            if not first:
                keys = keys.where(_after(order))
        else:
            if tag:
                published_at, id_ = article_tags.c.published_at, article_tags.c.article_id
                keys = select(id_.label("id"), published_at.label("published_at")).where(
                    article_tags.c.tag_id == _tag_id(), published_at.is_not(None)
                )
                if category:
                    keys = keys.join(articles, articles.c.id == id_).where(_in_category())
            else:
                published_at, id_ = articles.c.published_at, articles.c.id
                keys = select(id_.label("id"), published_at.label("published_at")).where(
                    _in_category(), articles.c.status == ArticleStatus.published
                )
            order = [published_at, id_]
            if not first:
                keys = keys.where(_after(order))
        page = keys.order_by(*(c.desc() for c in order)).limit(bindparam("limit")).subquery("page")
        ranked = [page.c.rank] if search else []
        return (
            select(*self.columns, *ranked)
            .select_from(_joined(page.join(articles, articles.c.id == page.c.id)))
            .where(articles.c.status == ArticleStatus.published)
            .order_by(*(c.desc() for c in (*ranked, page.c.published_at, page.c.id)))
        )


def _read(name: str, statement: Select[Any]) -> ReadStatement:
    return ReadStatement(f"cms.public.{name}", statement)


_statements: dict[str, Statements] = {}


def statements(dialect: str) -> Statements:
    found = _statements.get(dialect)
    if found is None:
        found = _statements[dialect] = Statements(dialect)
    return found
