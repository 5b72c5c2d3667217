"""Builders of valid domain objects (through the public API where it exists), so tests read as the domain."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import date

import httpx
from sqlalchemy import Table, func, select
from stdnum.cn import uscc

from services.registry.certification.rules import today as china_today
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
        column = model.c[name] if isinstance(model, Table) else getattr(model, name)
        query = query.where(column == value)
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


# --- identifiers of the certification chain ---------------------------------------

# Characters a credit code may carry (GB 32100 leaves out I, O, S, V and Z).
_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def org_code() -> str:
    """A valid 9-character organisation code (GB 11714), drawn at random."""
    from services.registry.certification.identifiers import org_code_check_character

    first_eight = "".join(random.choice(_CREDIT_ALPHABET) for _ in range(8))
    return first_eight + org_code_check_character(first_eight)


def credit_code(org: str | None = None, division_code: str = "330100", kind: str = "91") -> str:
    """A valid unified social credit code (GB 32100) embedding ``org`` (a fresh one if None)."""
    base = kind + division_code + (org or org_code())
    return base + uscc.calc_check_digit(base)


def wrong_check_character(code: str) -> str:
    """``code`` with its last (check) character replaced by another one."""
    return code[:-1] + next(c for c in "0123456789" if c != code[-1])


# Years 2000–2026, serials 100–999 (the demo chain's bodies hold lower serials).
_APPROVAL_NUMBERS = 27 * 900
_approval_serials = itertools.count(random.randrange(_APPROVAL_NUMBERS))


def approval_number() -> str:
    """A well-formed approval number CNCA-R-YYYY-NNN, a different one each call in a run."""
    n = next(_approval_serials) % _APPROVAL_NUMBERS
    return f"CNCA-R-{2000 + n // 900}-{100 + n % 900:03d}"


def registration_number() -> str:
    return f"2016-N1QMS-{uuid.uuid4().int % 10**9:09d}"


# --- the certification chain through the API ----------------------------------------


async def _created(client: httpx.AsyncClient, token: str, url: str, payload: dict) -> dict:
    response = await client.post(url, json=payload, headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()


async def create_certification_body(client: httpx.AsyncClient, token: str, **extra) -> dict:
    """A body approved this year for QMS and CCC (category 0901); retried on the rare
    approval number an earlier run's reused database holds already."""
    for _ in range(20):
        payload = {
            "approval_number": approval_number(),
            "name": unique("认证中心"),
            "approved_on": china_today().replace(month=1, day=1).isoformat(),
            "approved_schemes": ["qms", "ccc"],
            "ccc_designations": ["0901"],
            **extra,
        }
        response = await client.post(
            "/api/v1/registry/certification-bodies", json=payload, headers=auth(token)
        )
        taken = response.status_code == 409 and response.json()["type"] == "/problems/approval-number-taken"
        if not (taken and "approval_number" not in extra):
            assert response.status_code == 201, response.text
            return response.json()
    raise AssertionError("no free approval number")


async def create_auditor(client: httpx.AsyncClient, token: str, **extra) -> dict:
    payload = {"registration_number": registration_number(), "name": unique("审核员")[:20], **extra}
    return await _created(client, token, "/api/v1/registry/auditors", payload)


async def affiliate(
    client: httpx.AsyncClient, token: str, auditor: dict, body: dict, started_on=None
) -> dict:
    payload = {"body_id": body["id"], "started_on": (started_on or china_today()).isoformat()}
    return await _created(client, token, f"/api/v1/registry/auditors/{auditor['id']}/affiliations", payload)


async def create_enterprise(client: httpx.AsyncClient, token: str, **extra) -> dict:
    """An enterprise under a fresh credit code (pass ``credit_code=None, org_code=…`` for an
    older record kept under its organisation code)."""
    payload = {
        "credit_code": credit_code(),
        "name": unique("示例企业有限公司"),
        "division_code": "330100",
        **extra,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    return await _created(client, token, "/api/v1/registry/enterprises", payload)


async def create_product(client: httpx.AsyncClient, token: str, holder: dict, **extra) -> dict:
    payload = {
        "holder_id": holder["id"],
        "name": unique("电冰箱"),
        "category_code": "0701",
        "model": unique("BCD"),
        **extra,
    }
    return await _created(client, token, "/api/v1/registry/products", payload)


async def record_activity(client: httpx.AsyncClient, token: str, body: dict, holder: dict, **extra) -> dict:
    payload = {
        "kind": "audit",
        "body_id": body["id"],
        "holder_id": holder["id"],
        "performed_on": china_today().isoformat(),
        "result": "conforming",
        **extra,
    }
    return await _created(client, token, "/api/v1/registry/certification-activities", payload)


# --- rows the API of this branch does not write -------------------------------------


def ccc_number(year: int = 2016, body_code: str = "01", category: str | None = None) -> str:
    """A 16-digit CCC certificate number: year, body code, product category, serial."""
    category = category or f"{random.randrange(1, 10_000):04d}"
    return f"{year}{body_code}{category}{random.randrange(10**6):06d}"


def management_system_number(letter: str = "Q") -> str:
    """A management-system certificate number shaped like 00216Q10097R1S."""
    return f"{random.randrange(10**5):05d}{random.randrange(100):02d}{letter}{random.randrange(10**5):05d}R0M"


async def insert_row(client: httpx.AsyncClient, table, **values) -> dict:
    """A row written straight to the database of the app behind ``client``: a certificate
    (its routes are another part's) or a record kept from before a rule existed."""
    async with client.app.state.sessionmaker() as session:
        row = table(**values)
        session.add(row)
        await session.commit()
        await session.refresh(row)
        return row.model_dump(warnings=False)


async def fetch_row(client: httpx.AsyncClient, model, row_id: int) -> dict | None:
    async with client.app.state.sessionmaker() as session:
        row = await session.get(model, row_id)
        return row.model_dump(warnings=False) if row is not None else None


async def insert_certificate(client: httpx.AsyncClient, body: dict, holder: dict, **extra) -> dict:
    """A valid QMS certificate of ``holder`` issued by ``body`` this year."""
    from services.registry.models import Certificate

    today = china_today()
    values = {
        "number": f"00{today.year % 100:02d}Q{uuid.uuid4().int % 10**8:08d}R0M",
        "scheme": "qms",
        "body_id": body["id"],
        "holder_id": holder["id"],
        "holder_name": holder["name"],
        "issued_on": today.replace(month=1, day=1),
        "expires_on": today.replace(year=today.year + 3, month=1, day=1),
        "bureau_id": holder["bureau_id"],
        "bureau_path": holder["bureau_path"],
        **extra,
    }
    return await insert_row(client, Certificate, **values)


# --- scope --------------------------------------------------------------------------


async def two_provinces(client: httpx.AsyncClient, national_token: str) -> dict[str, dict]:
    """Bureaus of its own for a test module: ``home`` (a city bureau under Zhejiang's
    quality-supervision unit), ``below`` (a county bureau under it) and ``away`` (a city
    bureau under Shandong's). The pilot units themselves hold the demo chain."""
    zj = await pilot_unit(client, national_token, "quality_supervision", "330000")
    sd = await pilot_unit(client, national_token, "quality_supervision", "370000")
    home = await create_bureau(client, national_token, zj, "city", "330100")
    below = await create_bureau(client, national_token, home, "county", "330106")
    away = await create_bureau(client, national_token, sd, "city", "370100")
    return {"home": home, "below": below, "away": away}


def same_problem(problem: dict, asked_id: int) -> dict:
    """A problem with the id that was asked for masked, and without its request id: what an
    out-of-scope answer and a missing-record answer must share."""
    masked = {k: v for k, v in problem.items() if k != "request_id"}
    if "detail" in masked:
        masked["detail"] = masked["detail"].replace(str(asked_id), "<id>")
    return masked


async def legacy_enterprise(client: httpx.AsyncClient, bureau: dict, **values) -> dict:
    """An enterprise record kept from before the one-record rule (an old import): the same
    enterprise may be on file under its credit code and, separately, its organisation code."""
    from services.registry.models import Enterprise

    return await insert_row(
        client,
        Enterprise,
        name=unique("旧档企业"),
        bureau_id=bureau["id"],
        bureau_path=bureau["path"],
        **values,
    )


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
    return await insert_row(client, CertificationBody, **values)


async def make_auditor(client: httpx.AsyncClient, bureau: dict, **overrides) -> dict:
    from services.registry.certification.models import Auditor

    values = {
        "registration_number": f"2016-N1QMS-{random.randrange(10**7):07d}",
        "name": unique("审核员")[:20],
        "bureau_id": bureau["id"],
        "bureau_path": bureau["path"],
        **overrides,
    }
    return await insert_row(client, Auditor, **values)


async def make_enterprise(
    client: httpx.AsyncClient, bureau: dict, division_code: str = "330106", **overrides
) -> dict:
    from services.registry.subjects.models import Enterprise

    values = {
        "credit_code": credit_code(division_code=division_code),
        "name": unique("杭州电器有限公司"),
        "division_code": division_code,
        "bureau_id": bureau["id"],
        "bureau_path": bureau["path"],
        **overrides,
    }
    return await insert_row(client, Enterprise, **values)


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
    return await insert_row(client, Product, **values)


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
            approval_number=approval_number(),  # one generator per run: numbers never repeat
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
