"""The bureau dimension: what the registry says of a bureau (its system above all), kept in
``bureau_dimension`` and cached in the process.

An event never waits long for the registry and never fails because of it: when the registry
cannot answer, the fact is written with an unknown system (counted under ``unknown``), and
:func:`refresh_unknown_systems` moves it under its system once the registry answers.
"""

# ruff: noqa: S608 - statements composed of this module's constant fragments; every value is bound

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.client import ServiceClient
from services.common.dates import today
from services.common.problems import NotFound
from services.statistics.aggregates.sql import change_statement

log = logging.getLogger("statistics.bureaus")

REGISTRY_TIMEOUT_SECONDS = 1.0
FAILURE_BACKOFF_SECONDS = 30.0

_services: ServiceClient | None = None
_systems: dict[int, str | None] = {}
_failed_at: dict[int, float] = {}


def use_services(services: ServiceClient | None) -> None:
    """The client events reach the registry with (set by the worker at startup, by the app)."""
    global _services
    _services = services


def forget() -> None:
    """Drop the process cache (tests)."""
    _systems.clear()
    _failed_at.clear()


_DIMENSION = text(
    """INSERT INTO bureau_dimension
        (bureau_id, bureau_path, parent_id, level, system, division_code, name, refreshed_at)
    VALUES (:bureau_id, :bureau_path, :parent_id, :level, :system, :division_code, :name, clock_timestamp())
    ON CONFLICT (bureau_id) DO UPDATE SET bureau_path = excluded.bureau_path, parent_id = excluded.parent_id,
        level = excluded.level, system = excluded.system, division_code = excluded.division_code,
        name = excluded.name, refreshed_at = excluded.refreshed_at"""
)
_KNOWN = text("SELECT system FROM bureau_dimension WHERE bureau_id = :bureau_id")


async def registry_bureau(services: ServiceClient, bureau_id: int) -> dict[str, Any] | None:
    """A bureau statistics has heard nothing of yet, as the registry knows it (None if unknown):
    the routes ask it where such a bureau stands before answering 404 or its empty figures."""
    try:
        return await services.get(f"/api/v1/registry/bureaus/{bureau_id}")
    except NotFound:
        return None


async def _fetch(bureau_id: int) -> dict[str, Any] | None:
    if _services is None:
        return None
    if time.monotonic() - _failed_at.get(bureau_id, -1e9) < FAILURE_BACKOFF_SECONDS:
        return None
    try:
        async with asyncio.timeout(REGISTRY_TIMEOUT_SECONDS):
            return await _services.get(f"/api/v1/registry/bureaus/{bureau_id}")
    except Exception as exc:  # the registry down, slow, or the bureau unknown: fill it later
        _failed_at[bureau_id] = time.monotonic()
        log.warning("bureau not read from the registry", extra={"bureau_id": bureau_id, "error": repr(exc)})
        return None


async def store(conn: AsyncConnection, bureau: dict[str, Any]) -> str | None:
    await conn.execute(
        _DIMENSION,
        {
            "bureau_id": bureau["id"],
            "bureau_path": bureau["path"],
            "parent_id": bureau.get("parent_id"),
            "level": bureau["level"],
            "system": bureau.get("system"),
            "division_code": bureau.get("division_code"),
            "name": bureau["name"][:200],
        },
    )
    _systems[bureau["id"]] = bureau.get("system")
    return bureau.get("system")


async def system_of(conn: AsyncConnection, bureau_id: int | None) -> str | None:
    """The bureau's system: from the cache, the dimension table, or the registry; None if unknown."""
    if bureau_id is None:
        return None
    if bureau_id in _systems:
        return _systems[bureau_id]
    known = (await conn.execute(_KNOWN, {"bureau_id": bureau_id})).first()
    if known is not None:
        _systems[bureau_id] = known.system
        return known.system
    bureau = await _fetch(bureau_id)
    if bureau is None:
        return None
    return await store(conn, bureau)


_UNKNOWN = {
    table: text(f"SELECT DISTINCT bureau_id FROM {table} WHERE system IS NULL LIMIT 1000")
    for table in ("lead_fact", "case_fact", "certificate_status_fact")
}
_SET_SYSTEM = {
    table: text(
        change_statement(
            table,
            "bureau_id = :bureau_id AND system IS NULL",
            f"UPDATE {table} SET system = :system "
            "WHERE bureau_id = :bureau_id AND system IS NULL RETURNING *",
        )
    )
    for table in _UNKNOWN
}


async def refresh_unknown_systems(conn: AsyncConnection, services: ServiceClient) -> dict[str, int]:
    """Facts written while their bureau's system was unknown move under it, deltas and all
    (in the caller's transaction). Answers the facts moved per table."""
    from services.statistics.aggregates.sql import apply_change

    moved: dict[str, int] = {}
    for table, query in _UNKNOWN.items():
        moved[table] = 0
        for (bureau_id,) in (await conn.execute(query)).all():
            system = _systems.get(bureau_id)
            if system is None:
                try:
                    bureau = await services.get(f"/api/v1/registry/bureaus/{bureau_id}")
                except Exception as exc:
                    log.warning("bureau still unknown", extra={"bureau_id": bureau_id, "error": repr(exc)})
                    continue
                system = await store(conn, bureau)
            if system is None:
                continue
            changed, _ = await apply_change(
                conn, _SET_SYSTEM[table], {"bureau_id": bureau_id, "system": system}, today=today()
            )
            moved[table] += changed
    return moved
