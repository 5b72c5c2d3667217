"""SQL of certification bodies, auditors and their affiliations, and certification activities."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy import select as core_select
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registry.certification.models import (
    Auditor,
    AuditorAffiliation,
    Certificate,
    CertificationActivity,
    CertificationBody,
)

_body = CertificationBody.__table__  # type: ignore[attr-defined]
_auditor = Auditor.__table__  # type: ignore[attr-defined]
_affiliation = AuditorAffiliation.__table__  # type: ignore[attr-defined]
_activity = CertificationActivity.__table__  # type: ignore[attr-defined]
_certificate = Certificate.__table__  # type: ignore[attr-defined]


def name_contains(column, text: str):
    """``column ILIKE '%text%'`` with the text's own wildcards escaped (a trigram index serves it)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%")


async def keyset_rows(
    session: AsyncSession, query, id_column, after_id: int | None, limit: int
) -> list[dict]:
    """One keyset page of ``query``, by ascending id after ``after_id``."""
    query = query.order_by(id_column).limit(limit)
    if after_id is not None:
        query = query.where(id_column > after_id)
    return [dict(r) for r in (await session.exec(query)).mappings().all()]


async def add(session: AsyncSession, obj: Any) -> Any:
    session.add(obj)
    await session.flush()
    return obj


# --- certification bodies ---------------------------------------------------


async def body_row(session: AsyncSession, body_id: int) -> dict[str, Any] | None:
    row = (await session.exec(core_select(_body).where(_body.c.id == body_id))).mappings().first()
    return dict(row) if row else None


async def get_body(
    session: AsyncSession, body_id: int, *, for_update: bool = False
) -> CertificationBody | None:
    return await session.get(CertificationBody, body_id, with_for_update=for_update)


async def body_holding(session: AsyncSession, column: str, value: str) -> CertificationBody | None:
    """The body whose ``column`` (approval_number, credit_code, ccc_body_code) is ``value``."""
    query = select(CertificationBody).where(getattr(CertificationBody, column) == value)
    return (await session.exec(query)).first()


async def list_body_rows(
    session: AsyncSession, filters: dict[str, Any], after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    query = core_select(_body)
    if filters.get("status") is not None:
        query = query.where(_body.c.status == filters["status"])
    if filters.get("scheme") is not None:
        query = query.where(_body.c.approved_schemes.contains([filters["scheme"]]))
    if filters.get("ccc_designation") is not None:
        query = query.where(_body.c.ccc_designations.contains([filters["ccc_designation"]]))
    if filters.get("bureau_id") is not None:
        query = query.where(_body.c.bureau_id == filters["bureau_id"])
    if filters.get("approval_number") is not None:
        query = query.where(_body.c.approval_number == filters["approval_number"])
    if filters.get("q"):
        query = query.where(name_contains(_body.c.name, filters["q"]))
    return await keyset_rows(session, query, _body.c.id, after_id, limit)


async def update_body(session: AsyncSession, body_id: int, values: dict[str, Any]) -> None:
    await session.exec(
        update(_body)
        .where(_body.c.id == body_id)
        .values(**values, version=_body.c.version + 1, updated_at=func.now())
    )


# --- auditors -----------------------------------------------------------------

# An auditor with the affiliation open now, if any (at most one: uq_auditor_affiliation_current).
_AUDITOR_READ = core_select(
    _auditor,
    _affiliation.c.id.label("affiliation_id"),
    _affiliation.c.body_id.label("affiliation_body_id"),
    _affiliation.c.started_on.label("affiliation_started_on"),
    _affiliation.c.created_at.label("affiliation_created_at"),
).select_from(
    _auditor.outerjoin(
        _affiliation, and_(_affiliation.c.auditor_id == _auditor.c.id, _affiliation.c.ended_on.is_(None))
    )
)


async def auditor_row(session: AsyncSession, auditor_id: int) -> dict[str, Any] | None:
    row = (await session.exec(_AUDITOR_READ.where(_auditor.c.id == auditor_id))).mappings().first()
    return dict(row) if row else None


async def get_auditor(session: AsyncSession, auditor_id: int, *, for_update: bool = False) -> Auditor | None:
    return await session.get(Auditor, auditor_id, with_for_update=for_update)


async def auditor_by_registration(session: AsyncSession, registration_number: str) -> Auditor | None:
    query = select(Auditor).where(Auditor.registration_number == registration_number)
    return (await session.exec(query)).first()


async def list_auditor_rows(
    session: AsyncSession, filters: dict[str, Any], after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    query = _AUDITOR_READ
    if filters.get("status") is not None:
        query = query.where(_auditor.c.status == filters["status"])
    if filters.get("body_id") is not None:
        query = query.where(_affiliation.c.body_id == filters["body_id"])
    if filters.get("registration_number") is not None:
        query = query.where(_auditor.c.registration_number == filters["registration_number"])
    if filters.get("q"):
        query = query.where(name_contains(_auditor.c.name, filters["q"]))
    return await keyset_rows(session, query, _auditor.c.id, after_id, limit)


async def update_auditor(session: AsyncSession, auditor_id: int, values: dict[str, Any]) -> int:
    """Apply ``values`` (maybe none: its affiliations changed) as a new version; that version."""
    result = await session.exec(
        update(_auditor)
        .where(_auditor.c.id == auditor_id)
        .values(**values, version=_auditor.c.version + 1, updated_at=func.now())
        .returning(_auditor.c.version)
    )
    return result.scalar_one()


async def current_affiliation(session: AsyncSession, auditor_id: int) -> AuditorAffiliation | None:
    query = select(AuditorAffiliation).where(
        AuditorAffiliation.auditor_id == auditor_id,
        AuditorAffiliation.ended_on.is_(None),  # type: ignore[union-attr]
    )
    return (await session.exec(query)).first()


async def last_ended_on(session: AsyncSession, auditor_id: int) -> date | None:
    """The day the auditor's latest past affiliation ended."""
    query = core_select(func.max(_affiliation.c.ended_on)).where(_affiliation.c.auditor_id == auditor_id)
    return (await session.exec(query)).scalar()


async def get_affiliation(
    session: AsyncSession, affiliation_id: int, *, for_update: bool = False
) -> AuditorAffiliation | None:
    return await session.get(AuditorAffiliation, affiliation_id, with_for_update=for_update)


async def list_affiliations(
    session: AsyncSession, auditor_id: int, after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    query = core_select(_affiliation).where(_affiliation.c.auditor_id == auditor_id)
    return await keyset_rows(session, query, _affiliation.c.id, after_id, limit)


async def end_affiliation(session: AsyncSession, affiliation_id: int, ended_on: date) -> None:
    await session.exec(
        update(_affiliation).where(_affiliation.c.id == affiliation_id).values(ended_on=ended_on)
    )


async def existing_auditor_ids(session: AsyncSession, auditor_ids: list[int]) -> set[int]:
    query = core_select(_auditor.c.id).where(_auditor.c.id.in_(auditor_ids))
    return set((await session.exec(query)).scalars().all())


async def affiliated_on(session: AsyncSession, body_id: int, auditor_ids: list[int], day: date) -> set[int]:
    """Those of ``auditor_ids`` practising in the body on ``day``."""
    query = core_select(_affiliation.c.auditor_id).where(
        _affiliation.c.body_id == body_id,
        _affiliation.c.auditor_id.in_(auditor_ids),
        _affiliation.c.started_on <= day,
        or_(_affiliation.c.ended_on.is_(None), _affiliation.c.ended_on >= day),
    )
    return set((await session.exec(query)).scalars().all())


# --- certification activities ---------------------------------------------------


async def activity_row(session: AsyncSession, activity_id: int) -> dict[str, Any] | None:
    query = core_select(_activity).where(_activity.c.id == activity_id)
    row = (await session.exec(query)).mappings().first()
    return dict(row) if row else None


async def list_activity_rows(
    session: AsyncSession, filters: dict[str, Any], after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    query = core_select(_activity)
    for column in ("certificate_id", "body_id", "holder_id", "kind"):
        if filters.get(column) is not None:
            query = query.where(_activity.c[column] == filters[column])
    return await keyset_rows(session, query, _activity.c.id, after_id, limit)


async def certificate_facts(session: AsyncSession, certificate_id: int) -> dict[str, Any] | None:
    """What an activity checks of its certificate: body, holder and status."""
    query = core_select(
        _certificate.c.id, _certificate.c.body_id, _certificate.c.holder_id, _certificate.c.status
    ).where(_certificate.c.id == certificate_id)
    row = (await session.exec(query)).mappings().first()
    return dict(row) if row else None


async def record_surveillance(session: AsyncSession, certificate_id: int, day: date) -> int | None:
    """Move the certificate's last surveillance day forward to ``day`` (a new version);
    the certificate's new version, or None when it already had a later one."""
    result = await session.exec(
        update(_certificate)
        .where(
            _certificate.c.id == certificate_id,
            or_(_certificate.c.last_surveillance_on.is_(None), _certificate.c.last_surveillance_on < day),
        )
        .values(last_surveillance_on=day, version=_certificate.c.version + 1, updated_at=func.now())
        .returning(_certificate.c.version)
    )
    return result.scalar()
