"""Request and response types of the CMS."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from townsquare.cms.enums import ArticleStatus, RevisionReason
from townsquare.cms.models import (
    BODY_MAX,
    CATEGORY_NAME_MAX,
    CATEGORY_SLUG_MAX,
    EXCERPT_MAX,
    SLUG_MAX,
    TAG_NAME_MAX,
    TAG_SLUG_MAX,
    TITLE_MAX,
)
from townsquare.kit.fields import PlainText, RequestBody, SingleLine, Slug, not_null

MAX_TAGS_PER_ARTICLE = 50

Title = Annotated[str, SingleLine(TITLE_MAX)]
Excerpt = Annotated[str, PlainText(EXCERPT_MAX)]
Body = Annotated[str, StringConstraints(max_length=BODY_MAX)]
ArticleSlug = Annotated[str, Slug(SLUG_MAX)]
CategoryName = Annotated[str, SingleLine(CATEGORY_NAME_MAX)]
CategorySlug = Annotated[str, Slug(CATEGORY_SLUG_MAX)]
TagName = Annotated[str, SingleLine(TAG_NAME_MAX)]
TagSlug = Annotated[str, Slug(TAG_SLUG_MAX)]


# --- categories and tags -------------------------------------------------------------------


class CategoryCreate(RequestBody):
    name: CategoryName
    slug: CategorySlug | None = Field(
        default=None, description="Made from the name when left out (`-2`, `-3`… on conflict)."
    )
    parent_id: uuid.UUID | None = None


class CategoryUpdate(RequestBody):
    name: CategoryName | None = None
    slug: CategorySlug | None = None
    parent_id: uuid.UUID | None = Field(
        default=None, description="Another category of the org, or null for a top category."
    )

    _required = not_null("name", "slug")


class Category(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    parent_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class TagCreate(RequestBody):
    name: TagName
    slug: TagSlug | None = Field(
        default=None, description="Made from the name when left out (`-2`, `-3`… on conflict)."
    )


class TagUpdate(RequestBody):
    name: TagName | None = None
    slug: TagSlug | None = None

    _required = not_null("name", "slug")


class Tag(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime
    updated_at: datetime


class TagRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str


# --- articles ------------------------------------------------------------------------------


class ArticleCreate(RequestBody):
    title: Title
    slug: ArticleSlug | None = Field(
        default=None,
        description="Made from the title when left out (`-2`, `-3`… on conflict); "
        "an explicit slug that is taken answers 409 `slug_taken`.",
    )
    excerpt: Excerpt = ""
    body: Body = Field(default="", description="HTML; sanitized on write.")
    category_id: uuid.UUID | None = None
    featured_media_id: uuid.UUID | None = None


def _version_field() -> Any:
    return Field(
        default=None, ge=1, description="The version the client last saw (or send `If-Match`)."
    )


class ArticleUpdate(RequestBody):
    """Only the fields sent change; `null` clears `category_id` and `featured_media_id` and
    is refused for the others. `version` (or the `If-Match` header) is required."""

    title: Title | None = None
    slug: ArticleSlug | None = None
    excerpt: Excerpt | None = None
    body: Body | None = None
    category_id: uuid.UUID | None = None
    featured_media_id: uuid.UUID | None = None
    version: int | None = _version_field()

    _required = not_null("title", "slug", "excerpt", "body", "version")


class VersionedAction(RequestBody):
    """The body of an article action that changes it (publish, unpublish, archive,
    restore): the version the client last saw, unless `If-Match` carries it."""

    version: int | None = _version_field()

    _required = not_null("version")


class ArticleSchedule(RequestBody):
    publish_at: AwareDatetime = Field(description="When to publish; must be in the future.")
    version: int | None = _version_field()

    _required = not_null("version")


class ArticleTagsReplace(RequestBody):
    tag_ids: list[uuid.UUID] = Field(max_length=MAX_TAGS_PER_ARTICLE)
    version: int | None = _version_field()

    _required = not_null("version")


class AuthorRef(BaseModel):
    id: uuid.UUID
    display_name: str


class ArticleSummary(BaseModel):
    """An article without its body, as management lists show it."""

    id: uuid.UUID
    title: str
    slug: str
    excerpt: str
    status: ArticleStatus
    author: AuthorRef | None
    category_id: uuid.UUID | None
    featured_media_id: uuid.UUID | None
    tags: list[TagRef]
    published_at: datetime | None
    scheduled_publish_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class Article(ArticleSummary):
    body: str


class ArticleRevision(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: int
    title: str
    excerpt: str
    body: str
    reason: RevisionReason
    editor_id: uuid.UUID | None
    created_at: datetime


# --- public read API -----------------------------------------------------------------------


class PublicAuthor(BaseModel):
    id: uuid.UUID
    display_name: str


class PublicCategory(BaseModel):
    slug: str
    name: str


class PublicTag(BaseModel):
    slug: str
    name: str


class PublicArticleItem(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    excerpt: str
    published_at: datetime
    author: PublicAuthor | None
    category: PublicCategory | None
    tags: list[PublicTag]


class PublicArticle(PublicArticleItem):
    body: str


class PublicArticlePage(BaseModel):
    items: list[PublicArticleItem]
    next_cursor: str | None
