"""Builders of valid domain objects through the public API, so tests read as the domain."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select

from tests.conftest import auth


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def pilot_unit(client: httpx.AsyncClient, token: str, system: str, division_code: str) -> dict:
    response = await client.get(
        "/api/v1/registry/bureaus",
        params={"pilot": "provincial", "system": system, "limit": 100},
        headers=auth(token),
    )
    assert response.status_code == 200, response.text
    matches = [b for b in response.json()["items"] if b["division_code"] == division_code]
    assert len(matches) == 1, f"no single pilot unit {system} {division_code}"
    return matches[0]


async def create_bureau(
    client: httpx.AsyncClient, token: str, parent: dict, level: str, division_code: str, **extra
) -> dict:
    payload = {
        "parent_id": parent["id"],
        "name": unique(f"{level}局"),
        "level": level,
        "division_code": division_code,
        **extra,
    }
    response = await client.post("/api/v1/registry/bureaus", json=payload, headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()


async def create_officer(
    client: httpx.AsyncClient,
    token: str,
    bureau: dict,
    body: str = "enforcement",
    credential: bool = True,
    **extra,
) -> dict:
    payload = {"bureau_id": bureau["id"], "body": body, "name": unique("执法员")[:20], **extra}
    if credential:
        payload["credential_number"] = "ZJ" + uuid.uuid4().hex[:12].upper()
    response = await client.post("/api/v1/registry/officers", json=payload, headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()


async def rows_where(client: httpx.AsyncClient, model, **fields) -> int:
    """Rows of ``model``, in the app behind ``client``, that have all these values.

    "Nothing written" is checked on the test's own rows (its unique name or credential,
    or a parent made for the test), never by whole-table counts, which other tests change."""
    query = select(func.count()).select_from(model)
    for name, value in fields.items():
        query = query.where(getattr(model, name) == value)
    async with client.app.state.sessionmaker() as session:
        return (await session.exec(query)).scalar_one()


async def audit_entries(
    client: httpx.AsyncClient, entity: str, entity_id: object = None, **data
) -> list[dict]:
    """Audit entries of the app behind ``client`` about ``entity`` (one of them, by id)
    whose data holds ``data``'s values: the entries a test's own writes made."""
    table = client.app.state.audit.table
    query = select(table.c.action, table.c.entity_id, table.c.data).where(table.c.entity == entity)
    if entity_id is not None:
        query = query.where(table.c.entity_id == str(entity_id))
    if data:
        query = query.where(table.c.data.contains(data))
    async with client.app.state.sessionmaker() as session:
        return [dict(row) for row in (await session.exec(query.order_by(table.c.id))).mappings()]
