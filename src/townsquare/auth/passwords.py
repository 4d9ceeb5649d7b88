"""Password rules and argon2id hashing, always off the event loop.

The common-password list (`common_passwords.txt`) is the 20,000-entry list Django ships
as `django/contrib/auth/common-passwords.txt.gz` (Royce Williams' list of the most
common passwords from breach corpora, lower-cased, BSD licence), keeping only the 1,780
entries of 10 characters or more: shorter ones are already refused by the length rule.
"""

from __future__ import annotations

import asyncio
from functools import cache, lru_cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from townsquare.config import Settings
from townsquare.kit.tokens import new_token

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("townsquare.auth").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def is_common_password(password: str) -> bool:
    """Whether the password (ignoring case) is among the most common passwords."""
    return password.lower() in common_passwords()


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why the password may not be used (common, or the email), or None when it may."""
    if is_common_password(password):
        return "This password is too common; choose one that is harder to guess."
    if email is not None and password.strip().lower() == email.strip().lower():
        return "The password may not be your email address."
    return None


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_cost,
        parallelism=parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


def hasher_for(settings: Settings) -> PasswordHasher:
    """The argon2id hasher with the configured cost parameters."""
    return _hasher(
        settings.ARGON2_TIME_COST, settings.ARGON2_MEMORY_COST_KIB, settings.ARGON2_PARALLELISM
    )


async def hash_password(settings: Settings, password: str) -> str:
    """An argon2id hash of the password, computed in a worker thread."""
    return await asyncio.to_thread(hasher_for(settings).hash, password)


def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(settings: Settings, password_hash: str, password: str) -> bool:
    """Whether the password matches the hash, checked in a worker thread."""
    return await asyncio.to_thread(_verify, hasher_for(settings), password_hash, password)


def needs_rehash(settings: Settings, password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the configured ones."""
    try:
        return hasher_for(settings).check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


_dummy_hashes: dict[tuple[int, int, int], str] = {}


async def burn_verification(settings: Settings, password: str) -> None:
    """Do the work of one verification against a throwaway hash, so that an unknown
    account takes as long to refuse as a wrong password."""
    key = (settings.ARGON2_TIME_COST, settings.ARGON2_MEMORY_COST_KIB, settings.ARGON2_PARALLELISM)
    dummy = _dummy_hashes.get(key)
    if dummy is None:
        dummy = await hash_password(settings, new_token(16))
        _dummy_hashes[key] = dummy
    await verify_password(settings, dummy, password)
