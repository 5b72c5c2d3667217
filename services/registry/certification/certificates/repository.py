"""Every SQL statement of certificates and their status history.

Reads are SQLAlchemy Core selects returning mappings (no ORM objects on the read
path); writes load the one row they change with ``FOR UPDATE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, literal_column, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.db import Database, driver_query
from services.registry.certification.certificates import rules
from services.registry.certification.models import (
    Auditor,
    Certificate,
    CertificateAuditor,
    CertificateProduct,
    CertificateStatusChange,
    CertificationBody,
)
from services.registry.network.models import Bureau
from services.registry.subjects.models import Enterprise, Product

_cert = Certificate.__table__  # type: ignore[attr-defined]
_change = CertificateStatusChange.__table__  # type: ignore[attr-defined]
_cert_product = CertificateProduct.__table__  # type: ignore[attr-defined]
_cert_auditor = CertificateAuditor.__table__  # type: ignore[attr-defined]
_product = Product.__table__  # type: ignore[attr-defined]
_auditor = Auditor.__table__  # type: ignore[attr-defined]
_body = CertificationBody.__table__  # type: ignore[attr-defined]
_enterprise = Enterprise.__table__  # type: ignore[attr-defined]

# The columns of a listed certificate (CertificateSummary without the computed conditions).
SUMMARY_COLUMNS = [
    _cert.c[name]
    for name in (
        "id",
        "number",
        "scheme",
        "status",
        "body_id",
        "holder_id",
        "holder_name",
        "division_code",
        "issued_on",
        "expires_on",
        "last_surveillance_on",
        "suspended_until",
        "bureau_id",
        "version",
        "status_changed_at",
        "updated_at",
    )
]
EXPORT_COLUMNS = [*SUMMARY_COLUMNS, _cert.c.scope]


@dataclass(frozen=True, slots=True)
class CertificateFilters:
    """The filters of a certificate list or export; None means "any"."""

    status: str | None = None
    scheme: str | None = None
    body_id: int | None = None
    holder_id: int | None = None
    bureau_id: int | None = None
    division_code: str | None = None  # a province (2 digits), city (4) or county (6) prefix
    expires_from: date | None = None
    expires_to: date | None = None
    q: str | None = None
    number: str | None = None
    surveillance_overdue: bool | None = None


def _division_clause(prefix: str) -> ColumnElement[bool]:
    # The constants are written into the statement (not bound) so the expression is the very
    # one of the indexes ix_certificate_province_id / ix_certificate_city_id in every plan.
    if len(prefix) == 6:
        return _cert.c.division_code == prefix
    n = literal_column(str(len(prefix)))
    return func.substr(_cert.c.division_code, literal_column("1"), n) == prefix


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(filters: CertificateFilters, on: date) -> list[ColumnElement[bool]]:
    c = _cert.c
    clauses: list[ColumnElement[bool]] = []
    for name in ("status", "scheme", "body_id", "holder_id", "bureau_id", "number"):
        value = getattr(filters, name)
        if value is not None:
            clauses.append(c[name] == value)
    if filters.division_code is not None:
        clauses.append(_division_clause(filters.division_code))
    if filters.expires_from is not None:
        clauses.append(c.expires_on >= filters.expires_from)
    if filters.expires_to is not None:
        clauses.append(c.expires_on <= filters.expires_to)
    if filters.q is not None:
        clauses.append(c.holder_name.ilike(f"%{_like_escape(filters.q)}%", escape="\\"))
    if filters.surveillance_overdue is True:
        clauses.append(rules.surveillance_overdue_clause(_cert, on))
    elif filters.surveillance_overdue is False:
        clauses.append(rules.surveillance_current_clause(_cert, on))
    return clauses


def list_query(filters: CertificateFilters, on: date, *, before_id: int | None, limit: int | None) -> Select:
    """Newest first (id descending), strictly before the cursor id."""
    query = select(*SUMMARY_COLUMNS).where(*_where(filters, on)).order_by(_cert.c.id.desc())
    if before_id is not None:
        query = query.where(_cert.c.id < before_id)
    if limit is not None:
        query = query.limit(limit)
    return query


def export_query(filters: CertificateFilters, on: date) -> Select:
    return select(*EXPORT_COLUMNS).where(*_where(filters, on)).order_by(_cert.c.id.desc())


async def list_certificate_rows(
    session: AsyncSession, filters: CertificateFilters, on: date, *, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    result = await session.exec(list_query(filters, on, before_id=before_id, limit=limit))
    return [dict(r) for r in result.mappings().all()]


async def certificate_row(session: AsyncSession, certificate_id: int) -> dict[str, Any] | None:
    query = select(_cert).where(_cert.c.id == certificate_id)
    row = (await session.exec(query)).mappings().first()
    return dict(row) if row else None


async def certified_products(session: AsyncSession, certificate_id: int) -> list[dict[str, Any]]:
    query = _products_query(certificate_id)
    return [dict(r) for r in (await session.exec(query)).mappings().all()]


async def certifying_auditors(session: AsyncSession, certificate_id: int) -> list[dict[str, Any]]:
    query = _auditors_query(certificate_id)
    return [dict(r) for r in (await session.exec(query)).mappings().all()]


def _products_query(certificate_id: Any) -> Select:
    return (
        select(_product.c.id, _product.c.name, _product.c.category_code, _product.c.model)
        .join(_cert_product, _cert_product.c.product_id == _product.c.id)
        .where(_cert_product.c.certificate_id == certificate_id)
        .order_by(_product.c.id)
    )


def _auditors_query(certificate_id: Any) -> Select:
    return (
        select(_auditor.c.id, _auditor.c.registration_number, _auditor.c.name)
        .join(_cert_auditor, _cert_auditor.c.auditor_id == _auditor.c.id)
        .where(_cert_auditor.c.certificate_id == certificate_id)
        .order_by(_auditor.c.id)
    )


# The certificate read is the registry's hottest route: its three statements run on the
# driver connection, compiled once (see services.common.db.Database).
_CERTIFICATE_BY_ID = driver_query(select(_cert).where(_cert.c.id == bindparam("certificate_id")))
_PRODUCTS_OF = driver_query(_products_query(bindparam("certificate_id")))
_AUDITORS_OF = driver_query(_auditors_query(bindparam("certificate_id")))


async def certificate_record(
    db: Database, certificate_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The certificate's row, its products and its auditors (as ``certificate_row``,
    ``certified_products`` and ``certifying_auditors``), on one pooled connection; None if absent."""
    params = {"certificate_id": certificate_id}
    async with db.driver() as conn:
        row = await conn.fetchrow(_CERTIFICATE_BY_ID.sql, *_CERTIFICATE_BY_ID.args(params))
        if row is None:
            return None
        products = await conn.fetch(_PRODUCTS_OF.sql, *_PRODUCTS_OF.args(params))
        auditors = await conn.fetch(_AUDITORS_OF.sql, *_AUDITORS_OF.args(params))
    return dict(row), [dict(r) for r in products], [dict(r) for r in auditors]


async def get_certificate(
    session: AsyncSession, certificate_id: int, *, for_update: bool = False
) -> Certificate | None:
    return await session.get(Certificate, certificate_id, with_for_update=for_update, populate_existing=True)


async def number_taken(session: AsyncSession, scheme: str, number: str) -> bool:
    query = select(_cert.c.id).where(_cert.c.scheme == scheme, _cert.c.number == number)
    return (await session.exec(query)).first() is not None


# --- what a certificate refers to ------------------------------------------


async def get_bureau(session: AsyncSession, bureau_id: int) -> Bureau | None:
    return await session.get(Bureau, bureau_id)


async def get_body(session: AsyncSession, body_id: int) -> CertificationBody | None:
    return await session.get(CertificationBody, body_id)


async def get_enterprise(session: AsyncSession, enterprise_id: int) -> Enterprise | None:
    return await session.get(Enterprise, enterprise_id)


async def product_holders(session: AsyncSession, product_ids: list[int]) -> dict[int, int]:
    """Product id → holder id, for the products that exist."""
    if not product_ids:
        return {}
    query = select(_product.c.id, _product.c.holder_id).where(_product.c.id.in_(product_ids))
    return {r.id: r.holder_id for r in (await session.exec(query)).all()}


async def existing_auditors(session: AsyncSession, auditor_ids: list[int]) -> set[int]:
    if not auditor_ids:
        return set()
    query = select(_auditor.c.id).where(_auditor.c.id.in_(auditor_ids))
    return {r.id for r in (await session.exec(query)).all()}


# --- writes ----------------------------------------------------------------


async def insert_certificate(
    session: AsyncSession, certificate: Certificate, product_ids: list[int], auditor_ids: list[int]
) -> Certificate:
    session.add(certificate)
    await session.flush()
    if product_ids:
        await session.exec(
            _cert_product.insert().values(
                [{"certificate_id": certificate.id, "product_id": p} for p in product_ids]
            )
        )
    if auditor_ids:
        await session.exec(
            _cert_auditor.insert().values(
                [{"certificate_id": certificate.id, "auditor_id": a} for a in auditor_ids]
            )
        )
    return certificate


async def bump_certificate(session: AsyncSession, certificate_id: int, values: dict[str, Any]) -> None:
    await session.exec(
        update(_cert)
        .where(_cert.c.id == certificate_id)
        .values(**values, version=_cert.c.version + 1, updated_at=func.now())
    )


async def add_status_change(
    session: AsyncSession, change: CertificateStatusChange
) -> CertificateStatusChange:
    session.add(change)
    await session.flush()
    return change


async def status_change_rows(
    session: AsyncSession, certificate_id: int, *, after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """The status history, oldest first."""
    query = (
        select(_change).where(_change.c.certificate_id == certificate_id).order_by(_change.c.id).limit(limit)
    )
    if after_id is not None:
        query = query.where(_change.c.id > after_id)
    return [dict(r) for r in (await session.exec(query)).mappings().all()]
