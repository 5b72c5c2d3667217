"""Backing stores that cannot be reached: told apart from bugs, logged once per incident.

A database that refuses connections, was restarted under the pool, or has no
connection left to give is an outage, not an error of the request: it is
answered 503 with ``Retry-After`` (``problems.outage_problem``), and logged
when it starts and when it ends rather than with a traceback per request.
SQLAlchemy invalidates the pool on a lost connection, so the requests after
the database returns get fresh connections.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("platform.outages")

DATABASE, QUEUE = "database", "queue"
# While an outage lasts, a reminder with the count of failed requests at most this often.
REMINDER_SECONDS = 300.0
# SQLSTATE of a server that is going away or not taking connections: connection
# exceptions (class 08), shutdowns (57P01-57P03), too many connections (53300).
_DATABASE_GONE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
# Refused, reset, timed out while connecting, a name that does not resolve. Raw, as asyncpg
# raises them while connecting: SQLAlchemy wraps only the driver's own errors.
_CONNECTION_LOST = (
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    PoolTimeout,  # no connection free (or none can be made) in time
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what SQLAlchemy wraps (``orig``), and its causes and contexts."""
    seen: set[int] = set()
    pending = [exc]
    while pending and len(seen) < 20:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(
            e
            for e in (getattr(current, "orig", None), current.__cause__, current.__context__)
            if isinstance(e, BaseException)
        )


def outage_of(exc: BaseException) -> str | None:
    """``DATABASE`` or ``QUEUE`` if ``exc`` means that store cannot be reached, else None."""
    for cause in _causes(exc):
        if isinstance(cause, RedisConnectionError | RedisTimeoutError):
            return QUEUE
        if _database_gone(cause):
            return DATABASE
    return None


def _database_gone(cause: BaseException) -> bool:
    if isinstance(cause, DBAPIError):
        return cause.connection_invalidated
    if isinstance(cause, asyncpg.PostgresError):
        return str(getattr(cause, "sqlstate", "") or "").startswith(_DATABASE_GONE_STATES)
    # A plain OSError: an unreachable host, or every address refused (errno unset).
    return isinstance(cause, _CONNECTION_LOST) or type(cause) is OSError


class OutageLog:
    """One log line when a store becomes unreachable, one when it is back."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._reminded: dict[str, float] = {}
        self._failures: dict[str, int] = {}

    def failed(self, store: str, exc: BaseException) -> None:
        now = time.monotonic()
        self._failures[store] = self._failures.get(store, 0) + 1
        if store not in self._since:
            self._since[store] = self._reminded[store] = now
            log.error(
                f"{store} unavailable",
                extra={"store": store, "error": type(exc).__name__, "reason": str(exc)[:300]},
            )
        elif now - self._reminded[store] >= REMINDER_SECONDS:
            self._reminded[store] = now
            log.error(
                f"{store} still unavailable",
                extra={
                    "store": store,
                    "error": type(exc).__name__,
                    "down_seconds": round(now - self._since[store]),
                    "failed_requests": self._failures[store],
                },
            )

    def recovered(self, store: str) -> None:
        since = self._since.pop(store, None)
        if since is None:
            return
        log.warning(
            f"{store} available again",
            extra={
                "store": store,
                "down_seconds": round(time.monotonic() - since, 1),
                "failed_requests": self._failures.pop(store, 0),
            },
        )

    def is_down(self, store: str) -> bool:
        return store in self._since


# For an app that keeps none of its own on its state (a bare test app).
_FALLBACK = OutageLog()


def outage_log(app: Any) -> OutageLog:
    return getattr(getattr(app, "state", None), "outages", None) or _FALLBACK


def watch_engine(engine: AsyncEngine, outages: OutageLog) -> None:
    """A new connection made means the database is back (the pool makes none while it is down)."""

    def connected(*_: Any) -> None:
        if outages.is_down(DATABASE):
            outages.recovered(DATABASE)

    event.listen(engine.sync_engine, "connect", connected)
