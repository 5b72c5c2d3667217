"""Conflicts of interest officers declare (回避): an officer is never drawn for a subject he
declared a conflict with (the draw reads ``officer_conflict``).

An officer declares his own; an administrator or a supervision principal whose
subtree holds the officer records one for him. Anyone else finds no such
officer (404), as for an officer outside their scope. Functions here never commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select as core_select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal, Role
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, Forbidden, NotFound
from services.registry.inspections.models import InspectionTarget
from services.registry.inspections.repository import target_row
from services.registry.network import repository as network_repo
from services.registry.plans.models import OfficerConflict
from services.registry.plans.task_schemas import ConflictCreate, ConflictRead
from services.registry.plans.tasks import subject_name
from services.registry.scope import field_error

_conflict = OfficerConflict.__table__  # type: ignore[attr-defined]
RECORDERS = (Role.ADMIN, Role.SUPERVISION)

_CONFLICT_READ = core_select(
    _conflict, subject_name(_conflict.c.subject_type, _conflict.c.subject_id).label("subject_name")
)


async def _officer_for(session: AsyncSession, principal: Principal, officer_id: int) -> dict[str, Any]:
    """The officer, if the principal is that officer or may act for him (else 404 / 403)."""
    officer = await network_repo.officer_row(session, officer_id)
    if principal.officer_id is not None and principal.officer_id == officer_id and officer is not None:
        return officer
    if officer is None or not principal.in_scope(officer["bureau_path"]):
        raise NotFound(f"Officer {officer_id} not found.")
    if not principal.has_role(*RECORDERS):
        raise Forbidden(
            "An officer's conflicts are declared by the officer himself, or recorded by an "
            "administrator or the supervision body.",
            slug="role-required",
        )
    return officer


async def list_conflicts(
    session: AsyncSession, principal: Principal, officer_id: int, cursor: str | None, limit: int
) -> tuple[list[ConflictRead], str | None]:
    await _officer_for(session, principal, officer_id)
    query = (
        _CONFLICT_READ.where(_conflict.c.officer_id == officer_id).order_by(_conflict.c.id).limit(limit + 1)
    )
    after = decode_cursor(cursor, int)
    if after:
        query = query.where(_conflict.c.id > after[0])
    rows = [dict(r) for r in (await session.exec(query)).mappings().all()]
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [ConflictRead.model_validate(r) for r in page], next_cursor


async def read_conflict(
    session: AsyncSession, principal: Principal, officer_id: int, conflict_id: int
) -> ConflictRead:
    await _officer_for(session, principal, officer_id)
    query = _CONFLICT_READ.where(_conflict.c.officer_id == officer_id, _conflict.c.id == conflict_id)
    row = (await session.exec(query)).mappings().first()
    if row is None:
        raise NotFound(f"Conflict {conflict_id} not found.")
    return ConflictRead.model_validate(dict(row))


async def declare_conflict(
    session: AsyncSession, audit: AuditLog, principal: Principal, officer_id: int, data: ConflictCreate
) -> ConflictRead:
    await _officer_for(session, principal, officer_id)
    if await target_row(session, InspectionTarget(data.subject_type), data.subject_id) is None:
        raise field_error(
            "body.subject_id",
            f"The registry holds no {data.subject_type} {data.subject_id}.",
            "subject_not_found",
        )
    already = (
        await session.exec(
            core_select(_conflict.c.id).where(
                _conflict.c.officer_id == officer_id,
                _conflict.c.subject_type == data.subject_type.value,
                _conflict.c.subject_id == data.subject_id,
            )
        )
    ).first()
    if already is not None:
        raise Conflict(
            f"Officer {officer_id} declared a conflict with {data.subject_type} {data.subject_id} already.",
            slug="conflict-already-declared",
            conflict_id=already[0],
        )
    conflict = OfficerConflict(
        officer_id=officer_id,
        subject_type=data.subject_type,
        subject_id=data.subject_id,
        reason=data.reason,
        declared_on=data.declared_on,
        recorded_by=principal.account_id,
    )
    session.add(conflict)
    await session.flush()
    await audit.record(
        session,
        principal,
        "officer_conflict.declared",
        "officer_conflict",
        conflict.id,
        {**data.model_dump(mode="json"), "officer_id": officer_id},
    )
    return await read_conflict(session, principal, officer_id, conflict.id)  # type: ignore[arg-type]
