"""What the pilot work reads from the registry over HTTP: the pilot units (bureaus with
``pilot=provincial``), their grassroots pilot designations and the bureaus of their subtrees.
The registry is the one source of those; nothing here is copied into a table except the path
and name a row needs for its scope filter and display."""

from __future__ import annotations

import asyncio
from typing import Any

from services.common.auth import Principal
from services.common.client import ServiceClient
from services.common.problems import NotFound

REGISTRY = "/api/v1/registry"
PAGE = 500


async def _all(services: ServiceClient, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await services.get(
            path, params={**params, "limit": PAGE, **({"cursor": cursor} if cursor else {})}
        )
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def pilot_unit(services: ServiceClient, principal: Principal, unit_id: int) -> dict[str, Any]:
    """The provincial pilot unit ``unit_id`` in the principal's scope; 404 (as if missing) for a
    bureau that is not one, missing, or outside the scope."""
    try:
        bureau = await services.get(f"{REGISTRY}/bureaus/{unit_id}")
    except NotFound:
        bureau = None
    if bureau is None or bureau["pilot"] != "provincial" or not principal.in_scope(bureau["path"]):
        raise NotFound(f"Pilot unit {unit_id} not found.")
    return bureau


async def pilot_units(services: ServiceClient, principal: Principal) -> list[dict[str, Any]]:
    """Every provincial pilot unit in the principal's scope, by id."""
    units = await _all(services, f"{REGISTRY}/bureaus", {"pilot": "provincial"})
    return [u for u in units if principal.in_scope(u["path"])]


async def designations(services: ServiceClient, unit_id: int) -> list[dict[str, Any]]:
    """The unit's grassroots pilot designations, oldest first (at most one current)."""
    return await _all(services, f"{REGISTRY}/bureaus/{unit_id}/pilot-designations", {})


async def subtree(services: ServiceClient, unit: dict[str, Any]) -> list[dict[str, Any]]:
    """The bureaus under the unit (the unit itself left out): where its model is rolled out."""
    bureaus = await _all(services, f"{REGISTRY}/bureaus", {"under": unit["id"]})
    return [b for b in bureaus if b["id"] != unit["id"]]


async def bureau_in_unit(services: ServiceClient, unit: dict[str, Any], bureau_id: int) -> dict[str, Any]:
    """A bureau under the unit; 404 (as if missing) for one elsewhere."""
    try:
        bureau = await services.get(f"{REGISTRY}/bureaus/{bureau_id}")
    except NotFound:
        bureau = None
    if bureau is None or bureau["id"] == unit["id"] or not bureau["path"].startswith(unit["path"]):
        raise NotFound(f"Bureau {bureau_id} not found under pilot unit {unit['id']}.")
    return bureau


async def registry_views(
    services: ServiceClient, units: list[dict[str, Any]]
) -> tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]]]:
    """Per unit, its designations and its subtree, read concurrently."""
    found = await asyncio.gather(
        asyncio.gather(*(designations(services, u["id"]) for u in units)),
        asyncio.gather(*(subtree(services, u) for u in units)),
    )
    return list(found[0]), list(found[1])
