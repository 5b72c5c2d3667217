"""Async engine, SQLModel sessions over asyncpg, and a per-service model base."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import registry as orm_registry
from sqlmodel.ext.asyncio.session import AsyncSession

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


def make_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 10, connect_timeout: float = 5.0
) -> AsyncEngine:
    # No pre-ping (a round trip per checkout): connections the server closed are dropped at
    # checkout (below); one lost during a statement fails that statement, and SQLAlchemy then
    # invalidates the whole pool, so the next requests reconnect.
    engine = create_async_engine(
        url,
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
