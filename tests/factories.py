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


# --- the certification chain, stored directly -------------------------------------
# For tests whose subject is not the chain itself (inspections, decision events): rows with
# valid identifiers, written straight to the registry's database.


def _serial() -> int:
    return uuid.uuid4().int % 10**8


async def store(client: httpx.AsyncClient, *objects) -> list:
    """Insert table rows in one transaction; returns them with their ids."""
    async with client.app.state.sessionmaker() as session:
        for obj in objects:
            session.add(obj)
            await session.flush()
        await session.commit()
        for obj in objects:
            await session.refresh(obj)
    return list(objects)


async def chain_of(client: httpx.AsyncClient, bureau: dict, *, status: str = "valid") -> dict:
    """A certification body, an auditor, an enterprise, its product and a CCC certificate of
    that product, kept by ``bureau``; returns the rows by inspection target type."""
    from datetime import date

    from services.registry.certification.identifiers import make_credit_code
    from services.registry.certification.models import Auditor, Certificate, CertificationBody
    from services.registry.subjects.models import Enterprise, Product

    kept = {"bureau_id": bureau["id"], "bureau_path": bureau["path"]}
    serial = _serial()
    (body,) = await store(
        client,
        CertificationBody(
            approval_number=f"CNCA-R-{2000 + serial % 27}-{serial // 27 % 1000:03d}",
            name=unique("认证中心"),
            approved_on=date(2006, 3, 1),
            approval_expires_on=date(2012, 2, 28),
            approved_schemes=["ccc"],
            ccc_designations=["0901"],
            **kept,
        ),
    )
    auditor, enterprise = await store(
        client,
        Auditor(registration_number=f"2008-NSC-{serial:08d}", name=unique("审核员")[:20], **kept),
        Enterprise(
            credit_code=make_credit_code("330100", serial),
            name=unique("电器有限公司"),
            division_code="330100",
            **kept,
        ),
    )
    (product,) = await store(
        client,
        Product(
            holder_id=enterprise.id, name=unique("电饭煲"), category_code="0901", model="DFB-30A", **kept
        ),
    )
    (certificate,) = await store(
        client,
        Certificate(
            number=f"2008{serial // 10**6 % 100:02d}0901{serial % 10**6:06d}",
            scheme="ccc",
            body_id=body.id,
            holder_id=enterprise.id,
            holder_name=enterprise.name,
            division_code="330100",
            issued_on=date(2008, 1, 15),
            expires_on=date(2013, 1, 14),
            status=status,
            **kept,
        ),
    )
    return {
        "body": body,
        "auditor": auditor,
        "enterprise": enterprise,
        "product": product,
        "certificate": certificate,
    }
