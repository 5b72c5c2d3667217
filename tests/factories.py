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


async def row_count(client: httpx.AsyncClient, model) -> int:
    """Rows of a table of the app behind ``client``: to show that bad input wrote nothing."""
    async with client.app.state.sessionmaker() as session:
        return (await session.exec(select(func.count()).select_from(model))).scalar_one()


async def audit_count(client: httpx.AsyncClient) -> int:
    async with client.app.state.sessionmaker() as session:
        return await client.app.state.audit.count(session)


async def create_provincial_unit(
    client: httpx.AsyncClient,
    token: str,
    system: str,
    division_code: str = "130000",
    pilot: str = "provincial",
) -> dict:
    """A provincial unit of a test's own, under the national regulator; a pilot unit by default.

    The default division (Hebei) holds no seeded pilot unit, so lookups of those stay unique.
    """
    response = await client.post(
        "/api/v1/registry/bureaus",
        json={
            "parent_id": 1,
            "name": unique("试点局"),
            "level": "provincial",
            "system": system,
            "division_code": division_code,
            "pilot": pilot,
        },
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    return response.json()
