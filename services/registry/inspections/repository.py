"""Every SQL statement of inspections."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Uuid, case, cast, func, insert, literal
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registry.certification.models import Auditor, Certificate, CertificationBody
from services.registry.inspections.models import Inspection, InspectionOfficer, InspectionTarget
from services.registry.models import OutboxEvent
from services.registry.network.models import Bureau, Officer
from services.registry.subjects.models import Enterprise, Product

_inspection = Inspection.__table__  # type: ignore[attr-defined]
_link = InspectionOfficer.__table__  # type: ignore[attr-defined]
_officer = Officer.__table__  # type: ignore[attr-defined]
_bureau = Bureau.__table__  # type: ignore[attr-defined]

# Per target type: its table and the column that names an object of it.
TARGETS = {
    InspectionTarget.BODY: (CertificationBody.__table__, "name"),  # type: ignore[attr-defined]
    InspectionTarget.AUDITOR: (Auditor.__table__, "name"),  # type: ignore[attr-defined]
    InspectionTarget.ENTERPRISE: (Enterprise.__table__, "name"),  # type: ignore[attr-defined]
    InspectionTarget.CERTIFICATE: (Certificate.__table__, "number"),  # type: ignore[attr-defined]
    InspectionTarget.PRODUCT: (Product.__table__, "name"),  # type: ignore[attr-defined]
}

_officer_ids = (
    core_select(func.array_agg(aggregate_order_by(_link.c.officer_id, _link.c.officer_id)))
    .where(_link.c.inspection_id == _inspection.c.id)
    .scalar_subquery()
)
# Only the subquery of the row's own target type is evaluated.
_target_name = case(
    *(
        (
            _inspection.c.target_type == kind.value,
            core_select(table.c[column]).where(table.c.id == _inspection.c.target_id).scalar_subquery(),
        )
        for kind, (table, column) in TARGETS.items()
    ),
    else_=literal(None),
)

# The referral's delivery state comes from the outbox row written with it.
_INSPECTION_READ = core_select(
    _inspection,
    _officer_ids.label("officer_ids"),
    _target_name.label("target_name"),
    OutboxEvent.c.enqueued_at.label("referral_enqueued_at"),
    OutboxEvent.c.delivered_at.label("referral_delivered_at"),
).select_from(
    _inspection.outerjoin(OutboxEvent, OutboxEvent.c.id == cast(_inspection.c.referral_event_id, Uuid))
)


async def inspection_row(session: AsyncSession, inspection_id: int) -> dict[str, Any] | None:
    row = (await session.exec(_INSPECTION_READ.where(_inspection.c.id == inspection_id))).mappings().first()
    return dict(row) if row else None


async def list_inspection_rows(
    session: AsyncSession,
    *,
    within_path: str,
    filters: dict[str, Any],
    inspected_from: date | None,
    inspected_to: date | None,
    after_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Inspections of the subtree at ``within_path``, by id after the cursor."""
    query = (
        _INSPECTION_READ.where(_inspection.c.bureau_path.startswith(within_path, autoescape=True))
        .order_by(_inspection.c.id)
        .limit(limit)
    )
    for column, value in filters.items():
        if value is not None:
            query = query.where(_inspection.c[column] == value)
    if inspected_from is not None:
        query = query.where(_inspection.c.inspected_on >= inspected_from)
    if inspected_to is not None:
        query = query.where(_inspection.c.inspected_on <= inspected_to)
    if after_id is not None:
        query = query.where(_inspection.c.id > after_id)
    return [dict(r) for r in (await session.exec(query)).mappings().all()]


async def target_row(
    session: AsyncSession, target_type: InspectionTarget, target_id: int
) -> dict[str, Any] | None:
    """The inspected object's name (and, for an enterprise, whether it was merged), or None."""
    table, column = TARGETS[target_type]
    columns = [table.c[column].label("name")]
    if target_type == InspectionTarget.ENTERPRISE:
        columns += [table.c.status, table.c.merged_into_id]
    row = (await session.exec(core_select(*columns).where(table.c.id == target_id))).mappings().first()
    return dict(row) if row else None


async def officer_rows(session: AsyncSession, officer_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The named officers with their bureau's path, by id (missing ids are absent)."""
    query = core_select(_officer.c.id, _officer.c.active, _bureau.c.path.label("bureau_path")).select_from(
        _officer.join(_bureau, _bureau.c.id == _officer.c.bureau_id)
    )
    rows = (await session.exec(query.where(_officer.c.id.in_(officer_ids)))).mappings().all()
    return {r["id"]: dict(r) for r in rows}


async def add(session: AsyncSession, obj: Any) -> Any:
    session.add(obj)
    await session.flush()
    return obj


async def add_officers(session: AsyncSession, inspection_id: int, officer_ids: list[int]) -> None:
    await session.exec(
        insert(_link).values([{"inspection_id": inspection_id, "officer_id": o} for o in officer_ids])
    )


async def lock_inspection(session: AsyncSession, inspection_id: int) -> Inspection | None:
    """The inspection, locked (``FOR UPDATE``) for a correction."""
    return await session.get(Inspection, inspection_id, with_for_update=True)
