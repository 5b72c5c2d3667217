"""Builders of valid domain objects through the public API, so tests read as the domain."""

from __future__ import annotations

import random
import uuid

import httpx
from sqlalchemy import func, select
from stdnum.cn import uscc

from services.registry.certification.identifiers import org_code_check_character
from tests.conftest import auth


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


_CODE_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100 leaves out I, O, Z, S, V


def org_code() -> str:
    """A random valid 9-character organisation code (GB 11714), check character computed."""
    body = "".join(random.choice(_CODE_CHARACTERS) for _ in range(8))
    return body + org_code_check_character(body)


def credit_code(division_code: str = "330100", org: str | None = None) -> str:
    """A random valid unified social credit code (GB 32100): registration authority 9
    (market regulation), type 1 (enterprise), the division, an organisation code, its check."""
    org = org or org_code()  # its characters and check character are all in the credit alphabet
    base = "91" + division_code + org
    return base + uscc.calc_check_digit(base)


def ccc_number(body_code: str = "01", category: str = "0201", year: int = 2021) -> str:
    """A 16-digit CCC certificate number: issue year, body code, product category, serial."""
    return f"{year}{body_code}{category}{random.randrange(10**6):06d}"


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
