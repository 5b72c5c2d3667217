"""The certification chain the certificate tests stand on, and helpers to register certificates."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from sqlalchemy import func, select, update

from services.registry.certification.models import (
    Certificate,
    CertificateAuditor,
    CertificateProduct,
    CertificateStatusChange,
)
from tests.conftest import auth
from tests.factories import (
    ccc_number,
    create_bureau,
    make_auditor,
    make_body,
    make_enterprise,
    make_product,
    pilot_unit,
)

CERTIFICATES = "/api/v1/registry/certificates"


async def build_chain(registry: httpx.AsyncClient, token_for) -> dict[str, Any]:
    """Zhejiang's quality-supervision unit with Hangzhou under it and a county under that,
    Shandong's unit; an approved and a suspended body, an enterprise with products, auditors."""
    national = token_for()
    zj = await pilot_unit(registry, national, "quality_supervision", "330000")
    sd = await pilot_unit(registry, national, "quality_supervision", "370000")
    city = await create_bureau(registry, national, zj, "city", "330100")
    county = await create_bureau(registry, national, city, "county", "330106")
    body = await make_body(registry, zj)
    holder = await make_enterprise(registry, zj, "330106")
    return {
        "zj": zj,
        "sd": sd,
        "city": city,
        "county": county,
        "body": body,
        "suspended_body": await make_body(registry, zj, status="suspended"),
        "holder": holder,
        "products": [await make_product(registry, holder) for _ in range(2)],
        "auditors": [await make_auditor(registry, zj) for _ in range(2)],
    }


def payload(chain: dict, **overrides) -> dict:
    """A valid CCC certificate of the chain's holder, issued by its approved body."""
    return {
        "scheme": "ccc",
        "number": ccc_number(),
        "body_id": chain["body"]["id"],
        "holder_id": chain["holder"]["id"],
        "product_ids": [p["id"] for p in chain["products"]],
        "auditor_ids": [a["id"] for a in chain["auditors"]],
        "issued_on": "2016-03-01",
        "scope": "电动自行车用充电器",
        **overrides,
    }


async def register(registry: httpx.AsyncClient, token: str, body: dict) -> dict:
    response = await registry.post(CERTIFICATES, json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()


async def certificate_rows(registry: httpx.AsyncClient, **where) -> int:
    """Certificates (with their links and history) matching ``where``: to show nothing was written."""
    async with registry.app.state.sessionmaker() as session:
        query = select(func.count()).select_from(Certificate)
        for name, value in where.items():
            query = query.where(getattr(Certificate, name) == value)
        return (await session.exec(query)).scalar_one()


async def links_of(registry: httpx.AsyncClient, certificate_id: int) -> tuple[int, int, int]:
    """Products, auditors and history records of one certificate."""
    async with registry.app.state.sessionmaker() as session:
        counts = []
        for model in (CertificateProduct, CertificateAuditor, CertificateStatusChange):
            query = select(func.count()).select_from(model).where(model.certificate_id == certificate_id)
            counts.append((await session.exec(query)).scalar_one())
        return tuple(counts)  # type: ignore[return-value]


async def set_columns(registry: httpx.AsyncClient, certificate_id: int, **values) -> None:
    """Set stored columns directly (a surveillance recorded elsewhere, a date in the past)."""
    async with registry.app.state.sessionmaker() as session:
        table = Certificate.__table__  # type: ignore[attr-defined]
        await session.exec(update(table).where(table.c.id == certificate_id).values(**values))
        await session.commit()


def iso(day: date) -> str:
    return day.isoformat()
