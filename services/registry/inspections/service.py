"""Inspections (监督检查) by the certification supervision body.

An inspection looks at a certification body, an auditor, an enterprise, a
certificate or a product, on a day, by at least two officers, and ends
compliant or non-compliant. A non-compliant one is referred to the enforcement
body as a lead (the closed loop: every finding ends as a decided lead): the
referral event is written to the outbox in the same transaction. Once
referred, an inspection is what enforcement received and is not corrected.

Inspections are readable only within the principal's scope; anything outside
answers 404 like a missing one. Functions here never commit.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.concurrency import check_if_match
from services.common.db import utcnow
from services.common.event_schemas import InspectionReferred
from services.common.outbox import outbox_state
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, NotFound, UnprocessableEntity
from services.registry.inspections import repository as repo
from services.registry.inspections.models import Inspection, InspectionResult, InspectionTarget
from services.registry.inspections.schemas import InspectionCreate, InspectionRead, InspectionUpdate
from services.registry.models import OUTBOX
from services.registry.network import repository as network_repo
from services.registry.network.models import Bureau
from services.registry.subjects.models import EnterpriseStatus

# The enforcement responsibility system (执法责任制): an inspection is done by at least two officers.
MIN_OFFICERS = 2
REFERRED = "registry.inspection.referred"


def _field_error(loc: str, message: str, kind: str) -> UnprocessableEntity:
    return UnprocessableEntity(message, errors=[{"loc": loc, "message": message, "type": kind}])


def _read(row: dict[str, Any]) -> InspectionRead:
    referral = None
    if row["referral_event_id"] is not None:
        delivery = {"enqueued_at": row["referral_enqueued_at"], "delivered_at": row["referral_delivered_at"]}
        referral = {"event_id": row["referral_event_id"], "state": outbox_state(delivery)}
    return InspectionRead.model_validate(
        {**row, "officer_ids": row["officer_ids"] or [], "referral": referral}
    )


async def read_inspection(session: AsyncSession, principal: Principal, inspection_id: int) -> InspectionRead:
    row = await repo.inspection_row(session, inspection_id)
    if row is None or not principal.in_scope(row["bureau_path"]):
        raise NotFound(f"Inspection {inspection_id} not found.")
    return _read(row)


async def list_inspections(
    session: AsyncSession,
    principal: Principal,
    filters: dict[str, Any],
    inspected_from: date | None,
    inspected_to: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[InspectionRead], str | None]:
    if filters.get("target_id") is not None and filters.get("target_type") is None:
        raise _field_error("query.target_type", "Name the target_type of target_id.", "missing")
    after = decode_cursor(cursor, int)
    rows = await repo.list_inspection_rows(
        session,
        within_path=principal.bureau_path,
        filters=filters,
        inspected_from=inspected_from,
        inspected_to=inspected_to,
        after_id=after[0] if after else None,
        limit=limit + 1,
    )
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [_read(r) for r in page], next_cursor


async def _inspecting_bureau(session: AsyncSession, principal: Principal, bureau_id: int | None) -> Bureau:
    bureau = await network_repo.get_bureau(session, bureau_id or principal.bureau_id)
    if bureau is None or not principal.in_scope(bureau.path):
        raise NotFound(f"Bureau {bureau_id} not found.")
    return bureau


async def _target_name(session: AsyncSession, target_type: InspectionTarget, target_id: int) -> str:
    target = await repo.target_row(session, target_type, target_id)
    if target is None:
        raise _field_error(
            "body.target_id", f"The registry holds no {target_type} {target_id}.", "target_not_found"
        )
    if target.get("status") == EnterpriseStatus.MERGED:
        raise Conflict(
            f"Enterprise {target_id} was merged into enterprise {target['merged_into_id']}: "
            "inspect that one.",
            slug="target-merged",
            merged_into_id=target["merged_into_id"],
        )
    return target["name"]


async def _check_officers(
    session: AsyncSession, principal: Principal, bureau: Bureau, officer_ids: list[int]
) -> list[int]:
    """The distinct officers named, each active and of the inspecting bureau's subtree."""
    distinct = list(dict.fromkeys(officer_ids))
    if len(distinct) < MIN_OFFICERS:
        raise Conflict(
            f"An inspection is carried out by at least {MIN_OFFICERS} officers; {len(distinct)} named.",
            slug="too-few-officers",
        )
    found = await repo.officer_rows(session, distinct)
    for index, officer_id in enumerate(officer_ids):
        officer = found.get(officer_id)
        if officer is None or not principal.in_scope(officer["bureau_path"]):
            raise _field_error(
                f"body.officer_ids.{index}", f"No officer {officer_id} in scope.", "officer_not_found"
            )
    for officer_id in distinct:
        officer = found[officer_id]
        if not officer["active"]:
            raise Conflict(f"Officer {officer_id} is not active.", slug="officer-inactive")
        if not officer["bureau_path"].startswith(bureau.path):
            raise Conflict(
                f"Officer {officer_id} is not of bureau {bureau.id} or a bureau under it.",
                slug="officer-outside-bureau",
            )
    return distinct


async def _refer(session: AsyncSession, inspection: Inspection, target_name: str) -> str:
    """Refer a non-compliant inspection to the enforcement body as a lead (案件线索移送): the
    event joins the caller's transaction, so it is sent if and only if the inspection is stored."""
    event = await OUTBOX.emit(
        session,
        REFERRED,
        aggregate_type="inspection",
        aggregate_id=inspection.id,  # type: ignore[arg-type]
        aggregate_version=inspection.version,
        bureau_id=inspection.bureau_id,
        bureau_path=inspection.bureau_path,
        payload=InspectionReferred(
            inspection_id=inspection.id,  # type: ignore[arg-type]
            target_type=inspection.target_type,
            target_id=inspection.target_id,
            target_name=target_name[:256],
            result=inspection.result,
            findings=inspection.findings,
            inspected_on=inspection.inspected_on,
            bureau_id=inspection.bureau_id,
        ),
    )
    return str(event.id)


async def create_inspection(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: InspectionCreate
) -> InspectionRead:
    bureau = await _inspecting_bureau(session, principal, data.bureau_id)
    target_name = await _target_name(session, data.target_type, data.target_id)
    officer_ids = await _check_officers(session, principal, bureau, data.officer_ids)
    inspection = await repo.add(
        session,
        Inspection(
            bureau_id=bureau.id,  # type: ignore[arg-type]
            bureau_path=bureau.path,
            target_type=data.target_type,
            target_id=data.target_id,
            inspected_on=data.inspected_on,
            findings=data.findings,
            result=data.result,
            recorded_by=principal.account_id,
        ),
    )
    await repo.add_officers(session, inspection.id, officer_ids)
    if data.result == InspectionResult.NON_COMPLIANT:
        inspection.referral_event_id = await _refer(session, inspection, target_name)
        await session.flush()
    await audit.record(
        session,
        principal,
        "inspection.created",
        "inspection",
        inspection.id,
        {
            **data.model_dump(mode="json"),
            "bureau_id": bureau.id,
            "officer_ids": officer_ids,
            "referral_event_id": inspection.referral_event_id,
        },
    )
    return await read_inspection(session, principal, inspection.id)


async def update_inspection(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    inspection: Inspection,
    data: InspectionUpdate,
    if_match: str | None,
) -> InspectionRead:
    """Correct an inspection the route loaded, locked, in the principal's scope."""
    inspection_id = inspection.id
    check_if_match(if_match, inspection.version)
    changes = data.model_dump(exclude_unset=True, mode="json")
    if not changes:
        raise _field_error("body", "Name at least one field to change.", "empty_update")
    if inspection.referral_event_id is not None:
        raise Conflict(
            f"Inspection {inspection_id} was referred to the enforcement body as it stands; "
            "it is no longer corrected here.",
            slug="inspection-referred",
        )
    for key, value in changes.items():
        setattr(inspection, key, value)
    inspection.version += 1
    if inspection.result == InspectionResult.NON_COMPLIANT:
        target_name = await _target_name(
            session, InspectionTarget(inspection.target_type), inspection.target_id
        )
        inspection.referral_event_id = await _refer(session, inspection, target_name)
    inspection.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        principal,
        "inspection.updated",
        "inspection",
        inspection_id,
        {**changes, "referral_event_id": inspection.referral_event_id},
    )
    session.expire_all()
    return await read_inspection(session, principal, inspection_id)  # type: ignore[arg-type]
