"""Login throttling at the token endpoint, shared by every gateway replica through Redis.

Failed logins are counted per account (the submitted username or client_id,
known or not, so a refusal does not tell which accounts exist), per client
address (over all accounts) and per account at that address. Counts are
forgotten after ``login_failure_window_seconds`` without a failure.

* An account slows down, then locks: from ``login_slowdown_after`` failures
  each next attempt must wait ``login_slowdown_seconds``, doubling per
  failure; at ``login_max_failures`` it is locked for ``login_lockout_seconds``.
* An address locks at ``login_address_max_failures`` failures, whatever
  accounts they were for, so one address cannot lock out many accounts (or
  spray one password over them).
* While locked, every attempt is refused with 429 and ``Retry-After`` before
  the secret is checked, so a right password reveals nothing during a lockout.
* An attempt is counted when it starts, in the same atomic step that checks
  the locks, so concurrent guesses cannot overshoot a limit; a success takes
  back that account's failures, also from its address's count.

If Redis cannot be reached the token endpoint stays open (logged as a
warning and counted): without tokens the services cannot call one another, and
every guess still costs an argon2 check.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.accounts import OAuthError
from gateway.config import GatewaySettings
from services.common.problems import TooManyRequests
from services.common.ratelimit import address_bucket, guard_redis

log = logging.getLogger("gateway.throttle")

LOGINS_REFUSED = Counter("login_attempts_throttled_total", "Token requests refused by login throttling")
THROTTLE_UNAVAILABLE = Counter(
    "login_throttle_unavailable_total", "Token requests let through because Redis could not be reached"
)
# KEYS: account failures, account lock, address failures, address lock, account-at-address failures.
# ARGV: window ms, slowdown after, slowdown ms, account max, lockout ms, address max.
# Answers the milliseconds left of a lock (the attempt is refused), or 0 (counted and allowed).
_ATTEMPT = """
local locked = math.max(redis.call('PTTL', KEYS[2]), redis.call('PTTL', KEYS[4]))
if locked > 0 then return locked end
local window = tonumber(ARGV[1])
local failures = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], window)
local from_address = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], window)
redis.call('INCR', KEYS[5])
redis.call('PEXPIRE', KEYS[5], window)
local slowdown_after, account_max = tonumber(ARGV[2]), tonumber(ARGV[4])
local lockout = tonumber(ARGV[5])
local wait = 0
if failures >= account_max then
  wait = lockout
elseif failures >= slowdown_after then
  wait = math.min(tonumber(ARGV[3]) * 2 ^ (failures - slowdown_after), lockout)
end
if wait > 0 then redis.call('SET', KEYS[2], '1', 'PX', math.floor(wait)) end
if from_address >= tonumber(ARGV[6]) then redis.call('SET', KEYS[4], '1', 'PX', lockout) end
return 0
"""

# KEYS as above; ARGV: address max. Forgets the account's failures, and takes them off its address.
_SUCCESS = """
local mine = tonumber(redis.call('GET', KEYS[5]) or '0')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[5])
if mine > 0 then
  local left = redis.call('DECRBY', KEYS[3], mine)
  if left <= 0 then redis.call('DEL', KEYS[3]) end
  -- A lock set while this attempt ran, by its own count, is lifted with it.
  if left < tonumber(ARGV[1]) then redis.call('DEL', KEYS[4]) end
end
return 0
"""


class TooManyLoginAttempts(TooManyRequests):
    slug, title = "too-many-login-attempts", "Too many failed logins"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed logins for this account or from this address; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


@dataclass(frozen=True)
class _Keys:
    account_failures: str
    account_lock: str
    address_failures: str
    address_lock: str
    pair_failures: str

    def all(self) -> list[str]:
        return [
            self.account_failures,
            self.account_lock,
            self.address_failures,
            self.address_lock,
            self.pair_failures,
        ]


class LoginThrottle:
    def __init__(self, redis: Redis, settings: GatewaySettings) -> None:
        self.redis = redis
        self.settings = settings
        self._attempt = redis.register_script(_ATTEMPT)
        self._success = redis.register_script(_SUCCESS)

    @classmethod
    def connect(cls, settings: GatewaySettings) -> LoginThrottle:
        return cls(guard_redis(settings.redis_url), settings)

    async def aclose(self) -> None:
        await self.redis.aclose()

    def _keys(self, identifier: str, address: str) -> _Keys:
        # Hashed: bounded key length, and no usernames or addresses stored in Redis.
        account = hashlib.sha256(identifier.encode()).hexdigest()[:32]
        origin = hashlib.sha256(address.encode()).hexdigest()[:32]
        prefix = self.settings.login_throttle_key_prefix
        return _Keys(
            f"{prefix}account:{account}",
            f"{prefix}account-lock:{account}",
            f"{prefix}address:{origin}",
            f"{prefix}address-lock:{origin}",
            f"{prefix}pair:{account}:{origin}",
        )

    @asynccontextmanager
    async def attempt(self, identifier: str, host: str | None) -> AsyncIterator[None]:
        """Refuses a locked account or address with 429; otherwise counts the attempt, and
        forgets the account's failures if the block ends without an OAuth refusal."""
        s = self.settings
        keys = self._keys(identifier, address_bucket(host))
        args = [
            s.login_failure_window_seconds * 1000,
            s.login_slowdown_after,
            s.login_slowdown_seconds * 1000,
            s.login_max_failures,
            s.login_lockout_seconds * 1000,
            s.login_address_max_failures,
        ]
        counted = True
        try:
            locked_ms = int(await self._attempt(keys=keys.all(), args=args))
        except (RedisError, OSError) as exc:
            counted = False
            self._unavailable(exc)
        else:
            if locked_ms > 0:
                LOGINS_REFUSED.inc()
                raise TooManyLoginAttempts(max(1, math.ceil(locked_ms / 1000)))
        try:
            yield
        except OAuthError:
            raise  # a wrong secret: the attempt stays counted
        if counted:
            try:
                await self._success(keys=keys.all(), args=[s.login_address_max_failures])
            except (RedisError, OSError) as exc:
                self._unavailable(exc)

    @staticmethod
    def _unavailable(exc: Exception) -> None:
        THROTTLE_UNAVAILABLE.inc()
        log.warning("login throttling skipped: Redis unavailable", extra={"error": type(exc).__name__})
