"""Every SQL statement of pilot designations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, update
from sqlalchemy import select as core_select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registry.network.models import Bureau, PilotDesignation

_bureau = Bureau.__table__  # type: ignore[attr-defined]
_designation = PilotDesignation.__table__  # type: ignore[attr-defined]

# Designation columns plus the named bureau's name and level: the shape of PilotDesignationRead.
_DESIGNATION_READ = core_select(
    _designation,
    _bureau.c.name.label("grassroots_bureau_name"),
    _bureau.c.level.label("grassroots_bureau_level"),
    case((_designation.c.withdrawn_on.is_(None), True), else_=False).label("current"),
).select_from(_designation.join(_bureau, _bureau.c.id == _designation.c.grassroots_bureau_id))


async def designation_row(session: AsyncSession, designation_id: int) -> dict[str, Any] | None:
    query = _DESIGNATION_READ.where(_designation.c.id == designation_id)
    row = (await session.exec(query)).mappings().first()
    return dict(row) if row else None


async def list_designation_rows(
    session: AsyncSession, provincial_bureau_id: int, *, after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """A unit's designations, oldest first: its history."""
    query = (
        _DESIGNATION_READ.where(_designation.c.provincial_bureau_id == provincial_bureau_id)
        .order_by(_designation.c.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(_designation.c.id > after_id)
    return [dict(r) for r in (await session.exec(query)).mappings().all()]


async def current_designation(session: AsyncSession, provincial_bureau_id: int) -> PilotDesignation | None:
    query = core_select(PilotDesignation).where(
        PilotDesignation.provincial_bureau_id == provincial_bureau_id,
        PilotDesignation.withdrawn_on.is_(None),  # type: ignore[union-attr]
    )
    return (await session.exec(query)).scalars().first()  # type: ignore[call-overload]


async def get_designation(
    session: AsyncSession, designation_id: int, *, for_update: bool = False
) -> PilotDesignation | None:
    return await session.get(PilotDesignation, designation_id, with_for_update=for_update)


async def add(session: AsyncSession, obj: Any) -> Any:
    session.add(obj)
    await session.flush()
    return obj


async def set_bureau_pilot(session: AsyncSession, bureau_id: int, pilot: str) -> None:
    """Change a bureau's pilot role as a new version of the bureau (its ETag changes)."""
    await session.exec(
        update(_bureau)
        .where(_bureau.c.id == bureau_id)
        .values(pilot=pilot, version=_bureau.c.version + 1, updated_at=func.now())
    )


async def withdraw(session: AsyncSession, designation_id: int, withdrawn_on, reason: str) -> None:
    await session.exec(
        update(_designation)
        .where(_designation.c.id == designation_id)
        .values(
            withdrawn_on=withdrawn_on,
            withdrawal_reason=reason,
            version=_designation.c.version + 1,
            updated_at=func.now(),
        )
    )
