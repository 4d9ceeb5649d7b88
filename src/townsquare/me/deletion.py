"""Deleting one's own account (`DELETE /auth/me`).

The `users` row stays as an anonymous tombstone, so that what the person did in
organizations keeps pointing at someone: articles keep their author, chat messages their
sender and audit entries their actor id, all shown as "Deleted user". Everything that
says who the person was, or lets anyone act as them, goes: email (replaced by an
undeliverable `deleted-<id>@deleted.invalid`), name, avatar, password, memberships,
sessions, emailed tokens, the calendar feed's token and the outbox emails to their
address. Signups for shifts that have not started are cancelled (a freed place goes to
the waiting list, as when a volunteer cancels); past ones stay.

Under concurrency: the user row is locked first (`FOR NO KEY UPDATE`, which foreign-key
checks of rows that reference the user do not wait for), then every organization the
user belongs to, in id order, as `orgs.members` does for departures; so two owners
deleting their accounts at once cannot both leave an organization, and a second
deletion of the same account finds it gone. Shifts are locked last, in id order (sign-ups
also lock the user before the shift).
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.auth import passwords
from townsquare.auth.deps import NotAuthenticated
from townsquare.auth.errors import WrongCurrentPassword
from townsquare.auth.models import User, UserSession, UserToken
from townsquare.config import Settings
from townsquare.email.models import OutboxEmail
from townsquare.events import waitlist
from townsquare.events.calendar_tokens import CalendarToken
from townsquare.events.enums import ACTIVE_SIGNUP_STATUSES, SignupStatus
from townsquare.events.models import Event, Shift, Signup
from townsquare.events.shifts import lock_shift
from townsquare.kit import clock
from townsquare.me.errors import LastOwnerOfOrganizations
from townsquare.orgs import audit, departures
from townsquare.orgs.context import OrgContext
from townsquare.orgs.enums import MemberRole
from townsquare.orgs.members import lock_organization
from townsquare.orgs.models import Membership, Organization

DELETED_NAME = "Deleted user"
DELETED_DOMAIN = "deleted.invalid"
"""RFC 2606 reserves `.invalid`: no such address can be registered or receive mail."""
UNUSABLE_PASSWORD_HASH = "!deleted"
"""Not an argon2 hash: no password verifies against it."""


def deleted_email(user_id: uuid.UUID) -> str:
    return f"deleted-{user_id.hex}@{DELETED_DOMAIN}"


def is_deleted(user: User) -> bool:
    return user.email == deleted_email(user.id)


async def delete_account(
    session: AsyncSession, settings: Settings, user: User, *, password: str
) -> None:
    """Check the password, refuse while the user is an organization's last owner (409
    `last_owner` naming them), then anonymize the account (see the module's docstring)."""
    # The hash is checked before any lock is taken: it is the slow part.
    if not await passwords.verify_password(settings, user.password_hash, password):
        raise WrongCurrentPassword()
    locked = await session.scalar(
        select(User)
        .where(User.id == user.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if locked is None or is_deleted(locked):
        raise NotAuthenticated()
    memberships = await _lock_memberships(session, user)
    await _refuse_last_owner(session, memberships)
    await _cancel_upcoming_signups(session, settings, user)
    for membership, org in memberships:
        await session.delete(membership)
        await session.flush()
        await audit.record(
            session,
            OrgContext(org=org, user=user, membership=membership),
            "member.account_deleted",
            target=("member", membership.id),
            data={"user_id": str(user.id), "role": membership.role.value},
        )
    await session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    await session.execute(delete(UserToken).where(UserToken.user_id == user.id))
    await session.execute(delete(CalendarToken).where(CalendarToken.user_id == user.id))
    await session.execute(delete(OutboxEmail).where(OutboxEmail.to_address == user.email))
    user.email = deleted_email(user.id)
    user.display_name = DELETED_NAME
    user.avatar_url = None
    user.timezone = "UTC"
    user.password_hash = UNUSABLE_PASSWORD_HASH
    user.is_active = False
    user.is_staff = False
    user.email_verified_at = None
    user.last_login_at = None
    await session.flush()
    # After the anonymization, so that what other domains write names "Deleted user".
    for membership, org in memberships:
        await departures.membership_changed(
            session, OrgContext(org=org, user=user, membership=membership), user.id, None
        )


async def _lock_memberships(
    session: AsyncSession, user: User
) -> list[tuple[Membership, Organization]]:
    """Lock each of the user's organizations (id order), then read the memberships as
    they are now."""
    org_ids = list(
        await session.scalars(
            select(Membership.organization_id)
            .where(Membership.user_id == user.id)
            .order_by(Membership.organization_id)
        )
    )
    for org_id in org_ids:
        await lock_organization(session, org_id)
    rows = await session.execute(
        select(Membership, Organization)
        .join(Organization, Organization.id == Membership.organization_id)
        .where(Membership.user_id == user.id)
        .order_by(Organization.name, Organization.id)
        .execution_options(populate_existing=True)
    )
    return [(membership, org) for membership, org in rows]


async def _refuse_last_owner(
    session: AsyncSession, memberships: list[tuple[Membership, Organization]]
) -> None:
    owned = [org for membership, org in memberships if membership.role == MemberRole.owner]
    if not owned:
        return
    rows = await session.execute(
        select(Membership.organization_id, func.count())
        .where(
            Membership.organization_id.in_([org.id for org in owned]),
            Membership.role == MemberRole.owner,
        )
        .group_by(Membership.organization_id)
    )
    counts = {org_id: int(count) for org_id, count in rows}
    alone = [org for org in owned if counts.get(org.id, 0) <= 1]
    if not alone:
        return
    names = ", ".join(org.name for org in alone)
    raise LastOwnerOfOrganizations(
        f"You are the last owner of {names}: transfer ownership or delete "
        f"{'it' if len(alone) == 1 else 'them'} before deleting your account.",
        extra={
            "organizations": [
                {"id": str(org.id), "slug": org.slug, "name": org.name} for org in alone
            ]
        },
    )


async def _cancel_upcoming_signups(session: AsyncSession, settings: Settings, user: User) -> None:
    now = clock.now()
    shift_ids = sorted(
        set(
            await session.scalars(
                select(Signup.shift_id)
                .join(Shift, Shift.id == Signup.shift_id)
                .where(
                    Signup.user_id == user.id,
                    Signup.status.in_(ACTIVE_SIGNUP_STATUSES),
                    Shift.starts_at > now,
                )
            )
        )
    )
    for shift_id in shift_ids:
        shift = await lock_shift(session, shift_id)
        if shift is None:
            continue
        signups = await session.scalars(
            select(Signup)
            .where(
                Signup.shift_id == shift.id,
                Signup.user_id == user.id,
                Signup.status.in_(ACTIVE_SIGNUP_STATUSES),
            )
            .execution_options(populate_existing=True)
        )
        freed = 0
        for signup in signups:
            if signup.status == SignupStatus.confirmed:
                freed += 1
            signup.status = SignupStatus.cancelled
            signup.cancelled_at = now
            signup.cancelled_by_id = user.id
        shift.confirmed_count -= freed
        await session.flush()
        if freed:
            event = await session.get_one(Event, shift.event_id)
            await waitlist.promote(session, shift, event, now=now, settings=settings)
