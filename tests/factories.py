"""Plain async factory functions that arrange rows for tests. They flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth import passwords as auth_passwords
from townsquare.auth import sessions as auth_sessions
from townsquare.auth.deps import CSRF_HEADER
from townsquare.auth.models import User
from townsquare.cms.enums import ArticleStatus
from townsquare.cms.models import Article, ArticleTag, Category, Tag
from townsquare.config import Settings, get_settings
from townsquare.kit import clock
from townsquare.media.enums import MediaStatus
from townsquare.media.models import MediaItem
from townsquare.orgs.enums import MemberRole, Module
from townsquare.orgs.models import Membership, Organization, OrganizationModule


async def create_organization(
    session: AsyncSession,
    *,
    owner: object | None = None,
    name: str | None = None,
    slug: str | None = None,
    timezone: str = "UTC",
    modules: tuple[Module, ...] = (Module.cms, Module.events, Module.support),
) -> Organization:
    """An organization with the given modules on; `owner` (a User) becomes its owner."""
    suffix = uuid.uuid4().hex[:8]
    org = Organization(
        name=name or f"Org {suffix}",
        slug=slug or f"org-{suffix}",
        timezone=timezone,
        modules=[OrganizationModule(module=m) for m in modules],
    )
    session.add(org)
    await session.flush()
    if owner is not None:
        await add_member(session, org, owner, MemberRole.owner)
    return org


async def add_member(
    session: AsyncSession, org: Organization, user: object, role: MemberRole
) -> Membership:
    membership = Membership(organization_id=org.id, user_id=user.id, role=role)  # type: ignore[attr-defined]
    session.add(membership)
    await session.flush()
    return membership


# --- identity --------------------------------------------------------------------------

DEFAULT_PASSWORD = "a-long-Unusual-passphrase-42"
_password_hashes: dict[str, str] = {}


def _password_hash(password: str) -> str:
    # The real argon2id hasher, once per distinct password: tests stay fast and honest.
    if password not in _password_hashes:
        _password_hashes[password] = auth_passwords.hasher_for(get_settings()).hash(password)
    return _password_hashes[password]


async def create_user(
    session: AsyncSession,
    *,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    display_name: str = "Test User",
    is_staff: bool = False,
    verified: bool = True,
    timezone: str = "UTC",
    is_active: bool = True,
) -> User:
    """A user whose password is `password` (a unique email when none is given)."""
    user = User(
        email=(email or f"user-{uuid.uuid4().hex[:12]}@example.com").strip().lower(),
        display_name=display_name,
        timezone=timezone,
        password_hash=_password_hash(password),
        is_staff=is_staff,
        is_active=is_active,
        email_verified_at=clock.now() if verified else None,
    )
    session.add(user)
    await session.flush()
    return user


def _client_settings(client: httpx.AsyncClient) -> Settings:
    app = getattr(client._transport, "app", None)
    settings = getattr(getattr(app, "state", None), "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()


async def sign_in(session: AsyncSession, client: httpx.AsyncClient, user: User) -> str:
    """Open a real session for `user` (no HTTP, no rate limit), put its cookie and CSRF
    header on `client`, and return the CSRF token."""
    settings = _client_settings(client)
    issued = await auth_sessions.start_session(session, settings, user, user_agent="tests")
    # The domain the cookie jar files server-set cookies under, so that a later login
    # through the API replaces these cookies instead of sitting beside them.
    host = client.base_url.host
    domain = host if "." in host else f"{host}.local"
    for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
        client.cookies.delete(name)
    client.cookies.set(settings.SESSION_COOKIE_NAME, issued.token, domain=domain)
    client.cookies.set(settings.CSRF_COOKIE_NAME, issued.csrf_token, domain=domain)
    client.headers[CSRF_HEADER] = issued.csrf_token
    return issued.csrf_token


async def create_category(
    session: AsyncSession,
    org: Organization,
    *,
    name: str | None = None,
    slug: str | None = None,
    parent: Category | None = None,
) -> Category:
    suffix = uuid.uuid4().hex[:8]
    category = Category(
        organization_id=org.id,
        name=name or f"Category {suffix}",
        slug=slug or f"category-{suffix}",
        parent_id=parent.id if parent is not None else None,
    )
    session.add(category)
    await session.flush()
    return category


async def create_tag(
    session: AsyncSession, org: Organization, *, name: str | None = None, slug: str | None = None
) -> Tag:
    suffix = uuid.uuid4().hex[:8]
    tag = Tag(organization_id=org.id, name=name or f"Tag {suffix}", slug=slug or f"tag-{suffix}")
    session.add(tag)
    await session.flush()
    return tag


async def create_article(
    session: AsyncSession,
    org: Organization,
    *,
    author: User | None = None,
    title: str | None = None,
    slug: str | None = None,
    excerpt: str = "",
    body: str = "<p>Body</p>",
    status: ArticleStatus = ArticleStatus.draft,
    published_at: datetime | None = None,
    scheduled_publish_at: datetime | None = None,
    category: Category | None = None,
    tags: Sequence[Tag] = (),
) -> Article:
    """An article as stored (no revision, body taken as given); a published one gets
    `published_at` (now unless given), mirrored on its tags like the service does."""
    suffix = uuid.uuid4().hex[:8]
    if status == ArticleStatus.published and published_at is None:
        published_at = clock.now()
    article = Article(
        organization_id=org.id,
        title=title or f"Article {suffix}",
        slug=slug or f"article-{suffix}",
        excerpt=excerpt,
        body=body,
        status=status,
        author_id=author.id if author is not None else None,
        category_id=category.id if category is not None else None,
        published_at=published_at,
        scheduled_publish_at=scheduled_publish_at,
        version=1,
    )
    session.add(article)
    await session.flush()
    for tag in tags:
        session.add(
            ArticleTag(
                article_id=article.id,
                tag_id=tag.id,
                organization_id=org.id,
                published_at=published_at if status == ArticleStatus.published else None,
            )
        )
    await session.flush()
    return article


async def create_media(
    session: AsyncSession,
    org: Organization,
    *,
    filename: str = "picture.png",
    content_type: str = "image/png",
    size: int = 1234,
) -> MediaItem:
    """A ready media item row (nothing stored: for tests that only reference it)."""
    media_id = uuid.uuid4()
    item = MediaItem(
        id=media_id,
        organization_id=org.id,
        status=MediaStatus.ready,
        storage_key=f"orgs/{org.id}/media/{media_id}/original",
        filename=filename,
        content_type=content_type,
        size=size,
        width=10,
        height=10,
    )
    session.add(item)
    await session.flush()
    return item
