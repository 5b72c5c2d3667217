"""A fixed-window request counter per client, shared by every replica through Redis.

Each window of ``window_seconds`` has its own counter per client key: one
address bucket (one IPv4 address, or one IPv6 /64) for anonymous callers, or
whatever identifies a client once its token is verified (the gateway counts by
the token's subject). The request that takes a count above ``limit`` is
refused with 429 ``/problems/too-many-requests`` and ``Retry-After`` (the
seconds left of the window). If Redis cannot be reached the request is served
unlimited and a warning logged: a request must not fail because its guard is
away.

A fixed window lets a client send up to twice its limit across a window's
boundary; that is the price of one ``INCR`` per request, and the limits here
are set against floods, not to meter a fair share to the request.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.problems import TooManyRequests

log = logging.getLogger("platform.ratelimit")

# A guarded request waits at most this long for Redis before going on unguarded.
GUARD_REDIS_TIMEOUT_SECONDS = 0.5


def guard_redis(url: str) -> Redis:
    """The Redis client of a guard (a limit, a throttle): it gives up quickly, since a request
    is served unguarded rather than kept waiting when Redis is away."""
    return Redis.from_url(
        url, socket_timeout=GUARD_REDIS_TIMEOUT_SECONDS, socket_connect_timeout=GUARD_REDIS_TIMEOUT_SECONDS
    )


def address_bucket(host: str | None) -> str:
    """One IPv4 address, or the IPv6 /64 an address lies in (what one subscriber holds)."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return host or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class Allowance:
    """Where a client stands in the current window, after the request just counted."""

    limit: int
    window_seconds: int
    count: int
    reset_seconds: int  # until the window ends (at least 1)

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        """The ``RateLimit-*`` fields (IETF httpapi draft), and ``Retry-After`` once refused."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={self.window_seconds}",
        }
        if self.exceeded:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


class FixedWindowLimiter:
    def __init__(self, *, limit: int, window_seconds: int, key_prefix: str) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.key_prefix = key_prefix

    def key(self, client: str, window: int) -> str:
        # Hashed: bounded key length, and no client addresses or subjects stored in Redis.
        digest = hashlib.sha256(client.encode()).hexdigest()[:32]
        return f"{self.key_prefix}{window}:{digest}"

    async def count(self, redis: Redis, client: str) -> Allowance | None:
        """Count one request of ``client`` (an opaque key); None when Redis is away."""
        now = time.time()
        window = int(now // self.window_seconds)
        key = self.key(client, window)
        try:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window_seconds + 1)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning(
                "rate limiting skipped: Redis unavailable",
                extra={"error": type(exc).__name__, "prefix": self.key_prefix},
            )
            return None
        reset = max(1, math.ceil((window + 1) * self.window_seconds - now))
        return Allowance(self.limit, self.window_seconds, int(count), reset)

    async def hit(self, redis: Redis, host: str | None) -> None:
        """Count one request from the address ``host``; raise 429 past the limit."""
        allowance = await self.count(redis, address_bucket(host))
        if allowance is not None and allowance.exceeded:
            raise TooManyRequests(
                f"At most {self.limit} requests per {self.window_seconds} s from one address; "
                f"retry in {allowance.reset_seconds} s.",
                headers={"Retry-After": str(allowance.reset_seconds)},
            )
