"""Async engine, SQLModel sessions over asyncpg, and a per-service model base.

Connections are handed out first come, first served, with a bounded wait. SQLAlchemy's
asyncio pool lets a request that arrives just as a connection comes back take it ahead
of requests that have waited for one (asyncio queue barging): under load a few requests
wait hundreds of milliseconds while newer ones pass them. :class:`FairAsyncPool` puts a
FIFO gate (``asyncio.Semaphore``, FIFO since Python 3.11.1: a release hands the permit to
the longest waiter and a newcomer queues behind waiters) sized to the pool in front of
every checkout, so the pool itself never has a waiter; a request that cannot get a
connection within the wait limit is answered ``503 /problems/service-unavailable`` with
``Retry-After`` instead of queueing without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy import MetaData, event
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import registry as orm_registry
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util import await_only, greenlet_spawn
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.metrics import DB_CONNECTION_WAIT_SECONDS, DB_CONNECTION_WAIT_TIMEOUTS
from services.common.problems import ServiceUnavailable

# Seconds a request waits for a pooled connection before it is answered 503.
DEFAULT_CONNECTION_WAIT_SECONDS = 5.0
RETRY_AFTER_SECONDS = 1

# Stable constraint names, so Alembic migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_model_registry() -> orm_registry:
    """A registry (and so a MetaData) of one service's own tables.

    Each service declares ``class Base(SQLModel, registry=new_model_registry())``
    so its Alembic tree sees only its own tables even when several services are
    imported in one process (the test run).
    """
    return orm_registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def utcnow() -> datetime:
    return datetime.now(UTC)


class DatabaseBusy(ServiceUnavailable):
    """No pooled database connection became free within the wait limit."""

    def __init__(self, waited: float) -> None:
        super().__init__(
            f"Every database connection stayed busy for {waited:g} s; retry shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


class ConnectionGate:
    """First come, first served access to ``size`` connections, waiting at most ``timeout`` s."""

    def __init__(self, size: int, timeout: float) -> None:
        self.size = size
        self.timeout = timeout
        self._permits = asyncio.Semaphore(size)

    @property
    def waiting(self) -> int:
        return len(self._permits._waiters or ())

    async def acquire(self) -> None:
        permits = self._permits
        if not permits.locked():  # a free permit and nobody queued before us: no timer, no wait
            await permits.acquire()
            return
        started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(self.timeout):
                await permits.acquire()
        except TimeoutError:
            DB_CONNECTION_WAIT_TIMEOUTS.inc()
            raise DatabaseBusy(self.timeout) from None
        DB_CONNECTION_WAIT_SECONDS.observe(asyncio.get_running_loop().time() - started)

    def release(self) -> None:
        self._permits.release()


class FairAsyncPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio pool behind a :class:`ConnectionGate` sized to it.

    The gate is taken before a connection is checked out (by a session, a Core
    connection, ``/readyz``: every user of the engine) and given back once the
    connection is back in the pool, so waiters are served in arrival order.
    """

    wait_timeout: float = DEFAULT_CONNECTION_WAIT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # max_overflow -1 (unbounded) has nothing to queue for.
        self.gate = (
            ConnectionGate(self.size() + self._max_overflow, self.wait_timeout)
            if self._max_overflow >= 0
            else None
        )

    def _do_get(self) -> Any:
        # Runs in SQLAlchemy's greenlet: await_only suspends this checkout on the event loop.
        # QueuePool._do_get re-enters itself only after a non-blocking get, which cannot
        # interleave with another coroutine, so the permit is taken once per checkout.
        if self.gate is None:
            return super()._do_get()
        await_only(self.gate.acquire())
        try:
            return super()._do_get()
        except BaseException:
            self.gate.release()
            raise

    def _do_return_conn(self, record: Any) -> None:
        try:
            super()._do_return_conn(record)
        finally:
            if self.gate is not None:
                self.gate.release()


def fair_pool(wait_timeout: float) -> type[FairAsyncPool]:
    """The pool class of an engine whose checkouts wait at most ``wait_timeout`` s."""
    return type("FairAsyncPool", (FairAsyncPool,), {"wait_timeout": wait_timeout})


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    connect_timeout: float = 5.0,
    connection_wait_seconds: float = DEFAULT_CONNECTION_WAIT_SECONDS,
) -> AsyncEngine:
    # No pre-ping (a round trip per checkout): connections the server closed are dropped at
    # checkout (below); one lost during a statement fails that statement, and SQLAlchemy then
    # invalidates the whole pool, so the next requests reconnect.
    engine = create_async_engine(
        url,
        poolclass=fair_pool(connection_wait_seconds),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        connect_args={"server_settings": {"timezone": "UTC"}, "timeout": connect_timeout},
    )
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    return engine


def _discard_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pre-ping without the round trip: a connection the server closed while it sat in the
    pool (a restart, ``pg_terminate_backend``) is already marked closed by asyncpg; the pool
    replaces it instead of handing it to a request."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def make_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the same pool in autocommit: a read is one round trip, not BEGIN/SELECT/ROLLBACK."""
    return make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))  # type: ignore[arg-type]


# --- hot reads on the driver connection -------------------------------------

_DIALECT = asyncpg_dialect()


class DriverQuery(NamedTuple):
    """A Core statement compiled once for asyncpg: ``$n`` placeholders and their bind names."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        try:
            return [params[n] if n in params else self.defaults[n] for n in self.names]
        except KeyError as exc:
            raise TypeError(f"the query needs a value for {exc.args[0]!r}") from None


def driver_query(statement: ClauseElement) -> DriverQuery:
    """Compile a Core statement (values as ``bindparam("name")``) for :meth:`Database.fetch_one`.

    Compile once (at import, or memoized per shape): building and compiling a statement
    per request is most of what SQLAlchemy costs on a one-row read. Types whose bind
    processing happens in SQLAlchemy (not in asyncpg) do not belong in these queries.
    """
    compiled = statement.compile(dialect=_DIALECT)
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("expanding IN parameters are not supported on the driver path")
    names = tuple(compiled.positiontup or ())
    # Values written into the statement are defaults; a bare bindparam("x") must be given.
    defaults = {n: compiled.params[n] for n in names if not compiled.binds[n].required}
    return DriverQuery(compiled.string, names, defaults)


def like_prefix(prefix: str) -> str:
    """A LIKE pattern (escape character '/') matching strings that start with ``prefix``."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


class Database:
    """Reads straight on the asyncpg connection of a pooled connection.

    For the hottest reads, where a session, the ORM and per-request statement
    compilation cost several times the query itself. The connection comes from the
    engine's pool, so it waits in the same first-come-first-served gate as sessions
    and counts against the same pool size. Rows are asyncpg records (mapping access
    by column name); each statement runs on its own, in autocommit.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._pool = engine.sync_engine.pool

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[asyncpg.Connection]:
        """The asyncpg connection of one pooled connection, for several statements."""
        fairy = await greenlet_spawn(self._pool.connect)
        try:
            yield fairy.driver_connection
        except asyncpg.PostgresError as exc:
            if isinstance(exc, asyncpg.PostgresConnectionError):
                await greenlet_spawn(_discard, fairy)
            raise
        except BaseException:
            await greenlet_spawn(_discard, fairy)
            raise
        finally:
            await greenlet_spawn(fairy.close)

    def _run(self, method: str, query: DriverQuery, params: dict[str, Any]) -> Any:
        """Checkout, one statement, checkin, in one greenlet (SQLAlchemy's pool is sync code)."""
        fairy = self._pool.connect()
        try:
            conn = fairy.driver_connection
            return await_only(getattr(conn, method)(query.sql, *query.args(params)))
        except asyncpg.PostgresError as exc:
            if isinstance(exc, asyncpg.PostgresConnectionError):
                _discard(fairy)  # the connection is gone; any other refusal leaves it usable
            raise
        except BaseException:
            # Cut off midway (cancelled, protocol error): its state is unknown, do not reuse it.
            _discard(fairy)
            raise
        finally:
            fairy.close()

    async def fetch_one(self, query: DriverQuery, **params: Any) -> asyncpg.Record | None:
        return await greenlet_spawn(self._run, "fetchrow", query, params)

    async def fetch_all(self, query: DriverQuery, **params: Any) -> list[asyncpg.Record]:
        return await greenlet_spawn(self._run, "fetch", query, params)


def _discard(fairy: Any) -> None:
    """Close a pooled connection for good (the pool opens a new one when it needs one)."""
    fairy.driver_connection.terminate()
    fairy.invalidate()
