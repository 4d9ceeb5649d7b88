"""Rate limits: moving windows from the `limits` package, in memory or in Redis.

One `RateLimiter` lives on `app.state` (created on first use). Without `REDIS_URL` it
counts in process memory; with it, counts live in Redis, so every API process sharing
that Redis shares the counts. Limits are strings such as `"5/minute"` (settings
`RATE_LIMIT_*`); `RATE_LIMIT_ENABLED=false` switches every limit off.

Every limited endpoint calls `consume()`: each attempt counts, and an exhausted window
answers 429 `rate_limited` with `Retry-After`.

When Redis cannot be reached the limits fail closed: the limited endpoints (sign-in,
registration, resets, token links) answer 503 `rate_limiter_unavailable` until it is back,
because open they would let anyone guess passwords without limit for as long as the outage
lasts (which an attacker may be able to cause). Everything else keeps working.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import ConnectionPool
from redis.exceptions import RedisError

from townsquare.config import Settings
from townsquare.errors import RateLimited, ServiceUnavailable

logger = logging.getLogger("townsquare.ratelimit")

Key = tuple[str, ...]
"""Identifies one counter, e.g. `("login", "ip", "203.0.113.9")`."""

REDIS_KEY_PREFIX = "townsquare:ratelimit"
RETRY_AFTER_SECONDS = 5


class RateLimiterUnavailable(ServiceUnavailable):
    code = "rate_limiter_unavailable"
    detail = "Sign-in and other limited actions are paused for a moment; try again shortly."


@asynccontextmanager
async def _storage_errors() -> AsyncIterator[None]:
    """Redis failures as a 503 (see the module's docstring), never a 500."""
    try:
        yield
    except (RedisError, OSError) as exc:
        logger.error("rate limit storage unavailable: %s", type(exc).__name__)
        raise RateLimiterUnavailable(headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None


@lru_cache(maxsize=64)
def _item(limit: str) -> RateLimitItem:
    return parse(limit)


def _storage(settings: Settings) -> tuple[Storage, ConnectionPool[Any] | None]:
    if not settings.REDIS_URL:
        return MemoryStorage(), None
    # Our own pool, so that shutdown can close it (limits' storage has no close()).
    pool: ConnectionPool[Any] = ConnectionPool.from_url(
        settings.REDIS_URL, socket_connect_timeout=2.0, socket_timeout=5.0
    )
    uri = settings.REDIS_URL
    if "://" in uri and not uri.startswith("async+"):
        scheme, rest = uri.split("://", 1)
        uri = f"async+{'redis+unix' if scheme == 'unix' else scheme}://{rest}"
    options: dict[str, Any] = {"connection_pool": pool}
    storage = RedisStorage(uri, implementation="redispy", key_prefix=REDIS_KEY_PREFIX, **options)
    return storage, pool


class RateLimiter:
    """Moving-window counters over one storage; every method takes `(limit, key)` pairs."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.RATE_LIMIT_ENABLED
        self.storage, self._pool = _storage(settings)
        self._strategy = MovingWindowRateLimiter(self.storage)

    async def aclose(self) -> None:
        """Close the Redis connections, if any."""
        if self._pool is not None:
            await self._pool.disconnect()

    async def _retry_after(self, item: RateLimitItem, key: Key) -> int:
        stats = await self._strategy.get_window_stats(item, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def check(self, *limits: tuple[str, Key]) -> None:
        """Raise `RateLimited` when any of the windows is already full (counts nothing)."""
        if not self.enabled:
            return
        async with _storage_errors():
            waits = [
                await self._retry_after(_item(limit), key)
                for limit, key in limits
                if not await self._strategy.test(_item(limit), *key)
            ]
        if waits:
            raise RateLimited(max(waits))

    async def consume(self, *limits: tuple[str, Key]) -> None:
        """Count one attempt in each window, or raise `RateLimited` if one is full."""
        if not self.enabled:
            return
        await self.check(*limits)
        async with _storage_errors():
            refused = [
                (limit, key)
                for limit, key in limits
                if not await self._strategy.hit(_item(limit), *key)
            ]
            waits = [await self._retry_after(_item(limit), key) for limit, key in refused]
        if refused:
            raise RateLimited(max(waits))


async def get_rate_limiter(request: Request) -> RateLimiter:
    """The app's limiter (created on first use from the app's settings)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        limiter = RateLimiter(request.app.state.settings)
        request.app.state.rate_limiter = limiter
    return limiter


Limiter = Annotated[RateLimiter, Depends(get_rate_limiter)]
"""The app's rate limiter, as an endpoint parameter."""


async def close_rate_limiter(app: FastAPI) -> None:
    """Release the app's limiter (called when the app shuts down)."""
    limiter: RateLimiter | None = getattr(app.state, "rate_limiter", None)
    if limiter is not None:
        app.state.rate_limiter = None
        await limiter.aclose()


def client_ip(request: Request) -> str:
    """The caller's address: the peer, or whom a trusted proxy forwarded for (proxies.py)."""
    return request.client.host if request.client else "unknown"
