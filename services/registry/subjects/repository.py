"""SQL of certified enterprises and their products, and of a merge's moved references."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, or_, update
from sqlalchemy import select as core_select
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.db import Database, driver_query
from services.registry.certification.models import Certificate, CertificationActivity
from services.registry.certification.repository import keyset_rows, name_contains
from services.registry.subjects.models import Enterprise, Product

_enterprise = Enterprise.__table__  # type: ignore[attr-defined]
_product = Product.__table__  # type: ignore[attr-defined]
_certificate = Certificate.__table__  # type: ignore[attr-defined]
_activity = CertificationActivity.__table__  # type: ignore[attr-defined]

# Characters 9–17 of a credit code: the organisation code it embeds (ix_enterprise_embedded_org_code).
EMBEDDED_ORG_CODE = func.substr(_enterprise.c.credit_code, 9, 9)


async def add(session: AsyncSession, obj: Any) -> Any:
    session.add(obj)
    await session.flush()
    return obj


# --- enterprises ----------------------------------------------------------------


async def enterprise_row(session: AsyncSession, enterprise_id: int) -> dict[str, Any] | None:
    query = core_select(_enterprise).where(_enterprise.c.id == enterprise_id)
    row = (await session.exec(query)).mappings().first()
    return dict(row) if row else None


async def get_enterprise(
    session: AsyncSession, enterprise_id: int, *, for_update: bool = False
) -> Enterprise | None:
    return await session.get(Enterprise, enterprise_id, with_for_update=for_update)


async def lock_enterprises(session: AsyncSession, ids: list[int]) -> dict[int, Enterprise]:
    """Lock the rows in id order (two merges never wait on each other crosswise), read afresh."""
    query = (
        select(Enterprise)
        .where(Enterprise.id.in_(ids))  # type: ignore[union-attr]
        .order_by(Enterprise.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {e.id: e for e in (await session.exec(query)).all()}  # type: ignore[misc]


async def same_enterprise(
    session: AsyncSession, credit_code: str | None, org_code: str | None, *, other_than: int | None = None
) -> Enterprise | None:
    """A record of the enterprise these codes name: by credit code, or by organisation code
    whether recorded as such or embedded in a credit code."""
    matches = []
    if credit_code is not None:
        matches.append(_enterprise.c.credit_code == credit_code)
    if org_code is not None:
        matches += [_enterprise.c.org_code == org_code, org_code == EMBEDDED_ORG_CODE]
    if not matches:
        return None
    query = select(Enterprise).where(or_(*matches)).order_by(Enterprise.id).limit(1)  # type: ignore[arg-type]
    if other_than is not None:
        query = query.where(Enterprise.id != other_than)
    return (await session.exec(query)).first()


async def list_enterprise_rows(
    session: AsyncSession, filters: dict[str, Any], after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    query = core_select(_enterprise)
    if filters.get("division_range") is not None:
        low, high = filters["division_range"]
        query = query.where(_enterprise.c.division_code.between(low, high))
    if filters.get("status") is not None:
        query = query.where(_enterprise.c.status == filters["status"])
    if filters.get("credit_code") is not None:
        query = query.where(_enterprise.c.credit_code == filters["credit_code"])
    if filters.get("org_code") is not None:
        code = filters["org_code"]
        query = query.where(or_(_enterprise.c.org_code == code, code == EMBEDDED_ORG_CODE))
    if filters.get("q"):
        query = query.where(name_contains(_enterprise.c.name, filters["q"]))
    return await keyset_rows(session, query, _enterprise.c.id, after_id, limit)


async def update_enterprise(session: AsyncSession, enterprise_id: int, values: dict[str, Any]) -> None:
    await session.exec(
        update(_enterprise)
        .where(_enterprise.c.id == enterprise_id)
        .values(**values, version=_enterprise.c.version + 1, updated_at=func.now())
    )


async def holdings(session: AsyncSession, enterprise_id: int) -> tuple[int, int]:
    """How many certificates and products the enterprise holds (served by the holder indexes)."""
    query = core_select(*_holdings_counts(enterprise_id))
    row = (await session.exec(query)).one()
    return row[0], row[1]


def _holdings_counts(enterprise_id: Any) -> tuple:
    certificates = core_select(func.count()).where(_certificate.c.holder_id == enterprise_id)
    products = core_select(func.count()).where(_product.c.holder_id == enterprise_id)
    return certificates.scalar_subquery(), products.scalar_subquery()


# The enterprise read with its holdings, a hot read of the load mix: one statement on the
# driver connection, compiled once (see services.common.db.Database).
_CERTIFICATES_HELD, _PRODUCTS_HELD = _holdings_counts(bindparam("enterprise_id"))
_ENTERPRISE_WITH_HOLDINGS = driver_query(
    core_select(
        _enterprise, _CERTIFICATES_HELD.label("certificate_count"), _PRODUCTS_HELD.label("product_count")
    ).where(_enterprise.c.id == bindparam("enterprise_id"))
)


async def enterprise_record(db: Database, enterprise_id: int) -> dict[str, Any] | None:
    """``enterprise_row`` with ``holdings`` as ``certificate_count`` and ``product_count``, or None."""
    row = await db.fetch_one(_ENTERPRISE_WITH_HOLDINGS, enterprise_id=enterprise_id)
    return dict(row) if row else None


async def move_references(session: AsyncSession, duplicate_id: int, survivor_id: int) -> dict[str, int]:
    """Every reference to the duplicate now names the survivor; the counts moved, by table.

    Products and certificates are versioned records: each moved one gets a new version.
    """
    moved = {}
    for name, table in (("products", _product), ("certificates", _certificate)):
        result = await session.exec(
            update(table)
            .where(table.c.holder_id == duplicate_id)
            .values(holder_id=survivor_id, version=table.c.version + 1, updated_at=func.now())
        )
        moved[name] = result.rowcount
    result = await session.exec(
        update(_activity).where(_activity.c.holder_id == duplicate_id).values(holder_id=survivor_id)
    )
    moved["certification_activities"] = result.rowcount
    # Records merged into the duplicate earlier point straight at the survivor: one hop to follow.
    result = await session.exec(
        update(_enterprise)
        .where(_enterprise.c.merged_into_id == duplicate_id)
        .values(merged_into_id=survivor_id, version=_enterprise.c.version + 1, updated_at=func.now())
    )
    moved["merged_records"] = result.rowcount
    return moved


# --- products ---------------------------------------------------------------------


async def product_row(session: AsyncSession, product_id: int) -> dict[str, Any] | None:
    row = (await session.exec(core_select(_product).where(_product.c.id == product_id))).mappings().first()
    return dict(row) if row else None


async def get_product(session: AsyncSession, product_id: int, *, for_update: bool = False) -> Product | None:
    return await session.get(Product, product_id, with_for_update=for_update)


async def list_product_rows(
    session: AsyncSession, filters: dict[str, Any], after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    query = core_select(_product)
    for column in ("holder_id", "category_code"):
        if filters.get(column) is not None:
            query = query.where(_product.c[column] == filters[column])
    if filters.get("q"):
        query = query.where(name_contains(_product.c.name, filters["q"]))
    return await keyset_rows(session, query, _product.c.id, after_id, limit)


async def update_product(session: AsyncSession, product_id: int, values: dict[str, Any]) -> None:
    await session.exec(
        update(_product)
        .where(_product.c.id == product_id)
        .values(**values, version=_product.c.version + 1, updated_at=func.now())
    )
