"""Builders of valid domain objects (through the public API where it exists), so tests read as the domain."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import date

import httpx
from sqlalchemy import func, select
from stdnum.cn import uscc

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


# --- the certification chain, inserted directly -----------------------------
# Bodies, auditors, enterprises and products have their own routes elsewhere; these
# insert valid rows through the registry's own session, so certificate tests stand
# on a real chain.

_approval_serial = itertools.count(random.randrange(27_000))


def credit_code(division_code: str = "330106") -> str:
    """A valid unified social credit code (GB 32100) whose characters 9–17 are a valid
    organisation code (GB 11714)."""
    from services.registry.certification.identifiers import org_code_check_character

    first_eight = f"{random.randrange(10**8):08d}"
    body = "91" + division_code + first_eight + org_code_check_character(first_eight)
    return body + uscc.calc_check_digit(body)


def approval_number() -> str:
    """A certification body's approval number CNCA-R-YYYY-NNN, unique within the run."""
    n = next(_approval_serial) % 27_000
    return f"CNCA-R-{2000 + n // 1000}-{n % 1000:03d}"


def ccc_number(year: int = 2016, body_code: str = "01", category: str | None = None) -> str:
    """A 16-digit CCC certificate number: year, body code, product category, serial."""
    category = category or f"{random.randrange(1, 10_000):04d}"
    return f"{year}{body_code}{category}{random.randrange(10**6):06d}"


def management_system_number(letter: str = "Q") -> str:
    """A management-system certificate number shaped like 00216Q10097R1S."""
    return f"{random.randrange(10**5):05d}{random.randrange(100):02d}{letter}{random.randrange(10**5):05d}R0M"


async def insert(client: httpx.AsyncClient, row) -> dict:
    """Insert one table row through the app's own session; its columns as a dict."""
    async with client.app.state.sessionmaker() as session:
        session.add(row)
        await session.commit()
        await session.refresh(row)
        return row.model_dump(warnings=False)


async def make_body(client: httpx.AsyncClient, bureau: dict, **overrides) -> dict:
    from services.registry.certification.models import CertificationBody

    values = {
        "approval_number": approval_number(),
        "name": unique("认证中心"),
        "approved_on": date(2002, 1, 1),
        "approval_expires_on": date(2030, 12, 31),
        "approved_schemes": ["ccc", "qms", "ems"],
        "bureau_id": bureau["id"],
        "bureau_path": bureau["path"],
        **overrides,
    }
    return await insert(client, CertificationBody(**values))


async def make_auditor(client: httpx.AsyncClient, bureau: dict, **overrides) -> dict:
    from services.registry.certification.models import Auditor

    values = {
        "registration_number": f"2016-N1QMS-{random.randrange(10**7):07d}",
        "name": unique("审核员")[:20],
        "bureau_id": bureau["id"],
        "bureau_path": bureau["path"],
        **overrides,
    }
    return await insert(client, Auditor(**values))


async def make_enterprise(
    client: httpx.AsyncClient, bureau: dict, division_code: str = "330106", **overrides
) -> dict:
    from services.registry.subjects.models import Enterprise

    values = {
        "credit_code": credit_code(division_code),
        "name": unique("杭州电器有限公司"),
        "division_code": division_code,
        "bureau_id": bureau["id"],
        "bureau_path": bureau["path"],
        **overrides,
    }
    return await insert(client, Enterprise(**values))


async def make_product(client: httpx.AsyncClient, holder: dict, **overrides) -> dict:
    from services.registry.subjects.models import Product

    values = {
        "holder_id": holder["id"],
        "name": unique("充电器"),
        "category_code": "0901",
        "model": unique("XH-"),
        "bureau_id": holder["bureau_id"],
        "bureau_path": holder["bureau_path"],
        **overrides,
    }
    return await insert(client, Product(**values))
