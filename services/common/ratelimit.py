"""A fixed-window request counter per client address, shared by every replica through Redis.

Each window of ``window_seconds`` has its own counter per address bucket (one
IPv4 address, or one IPv6 /64); the request that takes a count above ``limit``
is refused with 429 ``/problems/too-many-requests`` and ``Retry-After`` (the
seconds left of the window). If Redis cannot be reached the request is served
unlimited and a warning logged: an open read must not fail because its guard is
away.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.problems import TooManyRequests

log = logging.getLogger("platform.ratelimit")


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


class FixedWindowLimiter:
    def __init__(self, *, limit: int, window_seconds: int, key_prefix: str) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.key_prefix = key_prefix

    def key(self, host: str | None, window: int) -> str:
        # Hashed: bounded key length, and no client addresses stored in Redis.
        origin = hashlib.sha256(address_bucket(host).encode()).hexdigest()[:32]
        return f"{self.key_prefix}{window}:{origin}"

    async def hit(self, redis: Redis, host: str | None) -> None:
        """Count one request from ``host``; raise 429 past the limit of the current window."""
        now = time.time()
        window = int(now // self.window_seconds)
        key = self.key(host, window)
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
            return
        if int(count) > self.limit:
            retry_after = max(1, math.ceil((window + 1) * self.window_seconds - now))
            raise TooManyRequests(
                f"At most {self.limit} requests per {self.window_seconds} s from one address; "
                f"retry in {retry_after} s.",
                headers={"Retry-After": str(retry_after)},
            )
