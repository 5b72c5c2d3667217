"""Every SQL statement of leads and cases."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import bindparam, or_, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.db import Database, DriverQuery, like_prefix
from services.enforcement.cases.models import (
    BureauDocumentPrefix,
    Case,
    CaseHearing,
    CaseOfficer,
    CaseSubject,
    Evidence,
    ExcludedInterval,
    Lead,
    Payment,
    PenaltyItem,
    ProcedureStep,
)


async def add(session: AsyncSession, row: Any) -> Any:
    session.add(row)
    await session.flush()
    return row


async def get_lead(session: AsyncSession, lead_id: int, *, for_update: bool = False) -> Lead | None:
    query = select(Lead).where(Lead.id == lead_id)
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def lock_lead(session: AsyncSession, lead_id: int) -> Lead | None:
    return await get_lead(session, lead_id, for_update=True)


async def lead_by_inspection(session: AsyncSession, inspection_id: int) -> Lead | None:
    return (await session.exec(select(Lead).where(Lead.inspection_id == inspection_id))).first()


# The hot statements are built once: building a statement costs more than running it.
_CASE = select(Case).where(Case.id == bindparam("case_id"))
_CASE_FOR_UPDATE = _CASE.with_for_update()


async def get_case(session: AsyncSession, case_id: int, *, for_update: bool = False) -> Case | None:
    return (
        await session.exec(_CASE_FOR_UPDATE if for_update else _CASE, params={"case_id": case_id})
    ).first()


_CASES_AFTER = (
    select(Case).where(Case.id > bindparam("after")).order_by(col(Case.id)).limit(bindparam("limit"))
)


async def cases_after(session: AsyncSession, after: int, limit: int) -> list[Case]:
    """Cases by id after ``after`` (every bureau: the caller is a platform service)."""
    return list((await session.exec(_CASES_AFTER, params={"after": after, "limit": limit})).all())


async def lock_case(session: AsyncSession, case_id: int) -> Case | None:
    return await get_case(session, case_id, for_update=True)


async def next_case_number(session: AsyncSession, bureau_id: int, year: int) -> tuple[str | None, int]:
    """The bureau's document prefix, and the next serial of the year (one row per bureau and year,
    counted under its row lock: two cases opened at once never share a number)."""
    conn = await session.connection()
    serial = (
        await conn.execute(
            text(
                "INSERT INTO case_number_counter (bureau_id, year, last) VALUES (:b, :y, 1) "
                "ON CONFLICT (bureau_id, year) DO UPDATE SET last = case_number_counter.last + 1 "
                "RETURNING last"
            ),
            {"b": bureau_id, "y": year},
        )
    ).scalar_one()
    prefix = await session.get(BureauDocumentPrefix, bureau_id)
    return (prefix.prefix if prefix else None), int(serial)


_OFFICERS = (
    select(CaseOfficer).where(CaseOfficer.case_id == bindparam("case_id")).order_by(col(CaseOfficer.id))
)
_CURRENT_OFFICERS = _OFFICERS.where(col(CaseOfficer.released_on).is_(None))
_SUBJECTS = (
    select(CaseSubject)
    .where(CaseSubject.case_id == bindparam("case_id"))
    .order_by(col(CaseSubject.subject_type))
)
_PENALTIES = (
    select(PenaltyItem).where(PenaltyItem.case_id == bindparam("case_id")).order_by(col(PenaltyItem.id))
)
_STAGE_PENALTIES = _PENALTIES.where(PenaltyItem.stage == bindparam("stage"))


async def current_officers(session: AsyncSession, case_id: int) -> list[CaseOfficer]:
    return list((await session.exec(_CURRENT_OFFICERS, params={"case_id": case_id})).all())


async def all_officers(session: AsyncSession, case_id: int) -> list[CaseOfficer]:
    return list((await session.exec(_OFFICERS, params={"case_id": case_id})).all())


async def subjects(session: AsyncSession, case_id: int) -> list[CaseSubject]:
    return list((await session.exec(_SUBJECTS, params={"case_id": case_id})).all())


async def penalties(session: AsyncSession, case_id: int, stage: str | None = None) -> list[PenaltyItem]:
    if stage:
        return list((await session.exec(_STAGE_PENALTIES, params={"case_id": case_id, "stage": stage})).all())
    return list((await session.exec(_PENALTIES, params={"case_id": case_id})).all())


async def drop_penalties(session: AsyncSession, case_id: int, stage: str) -> None:
    conn = await session.connection()
    await conn.execute(
        text("DELETE FROM penalty_item WHERE case_id = :c AND stage = :s"), {"c": case_id, "s": stage}
    )


async def penalty_by_event(session: AsyncSession, event_id: str) -> PenaltyItem | None:
    query = select(PenaltyItem).where(PenaltyItem.registry_event_id == event_id).with_for_update()
    return (await session.exec(query)).first()


_CASE_INTERVALS = (
    select(ExcludedInterval)
    .where(ExcludedInterval.case_id == bindparam("case_id"))
    .order_by(col(ExcludedInterval.id))
)
_LEAD_INTERVALS = (
    select(ExcludedInterval)
    .where(ExcludedInterval.lead_id == bindparam("lead_id"))
    .order_by(col(ExcludedInterval.id))
)


async def intervals(
    session: AsyncSession, *, case_id: int | None = None, lead_id: int | None = None
) -> list[ExcludedInterval]:
    if case_id is not None:
        return list((await session.exec(_CASE_INTERVALS, params={"case_id": case_id})).all())
    return list((await session.exec(_LEAD_INTERVALS, params={"lead_id": lead_id})).all())


async def timeline(session: AsyncSession, case_id: int | None, lead_id: int | None) -> list[ProcedureStep]:
    conditions = []
    if case_id is not None:
        conditions.append(ProcedureStep.case_id == case_id)
    if lead_id is not None:
        conditions.append(ProcedureStep.lead_id == lead_id)
    query = select(ProcedureStep).where(or_(*conditions)).order_by(col(ProcedureStep.id))
    return list((await session.exec(query)).all())


async def evidence(session: AsyncSession, case_id: int) -> list[Evidence]:
    query = select(Evidence).where(Evidence.case_id == case_id).order_by(col(Evidence.id))
    return list((await session.exec(query)).all())


async def payments(session: AsyncSession, case_id: int) -> list[Payment]:
    query = select(Payment).where(Payment.case_id == case_id).order_by(col(Payment.id))
    return list((await session.exec(query)).all())


LEAD_FILTERS = {
    "state": "state",
    "source": "source",
    "subject_type": "subject_type",
    "bureau_id": "bureau_id",
}


async def list_leads(
    session: AsyncSession,
    *,
    within_path: str,
    filters: dict[str, Any],
    subject_id: int | None,
    overdue_before: date | None,
    after_id: int | None,
    limit: int,
) -> list[Lead]:
    query = select(Lead).where(col(Lead.bureau_path).startswith(within_path))
    for name, column in LEAD_FILTERS.items():
        if filters.get(name) is not None:
            query = query.where(getattr(Lead, column) == filters[name])
    if subject_id is not None:
        query = query.where(Lead.subject_id == subject_id)
    if overdue_before is not None:
        query = query.where(col(Lead.next_due) < overdue_before)
    if after_id is not None:
        query = query.where(col(Lead.id) > after_id)
    return list((await session.exec(query.order_by(col(Lead.id)).limit(limit))).all())


CASE_SUMMARY_COLUMNS = (
    "c.id, c.number, c.bureau_id, c.state, c.procedure, c.title, c.party_name, c.subject_type, "
    "c.subject_id, c.violation_code, c.needs_legal_review, c.needs_filing, c.opened_on, c.decided_on, "
    "c.next_due, c.version, (c.next_due IS NOT NULL AND c.next_due < $1) AS overdue"
)
# Each filter: its condition, its parameter's place written {}; in a fixed order.
_CASE_FILTERS = (
    ("state", "c.state = {}"),
    ("procedure", "c.procedure = {}"),
    ("violation_code", "c.violation_code = {}"),
    ("bureau_id", "c.bureau_id = {}"),
    ("opened_from", "c.opened_on >= {}"),
    ("opened_to", "c.opened_on <= {}"),
    ("decided_from", "c.decided_on >= {}"),
    ("decided_to", "c.decided_on <= {}"),
    ("overdue_before", "c.next_due < {}"),
    (
        "officer_id",
        "EXISTS (SELECT 1 FROM case_officer o WHERE o.case_id = c.id AND o.officer_id = {} "
        "AND o.released_on IS NULL)",
    ),
    ("subject_type", "EXISTS (SELECT 1 FROM case_subject s WHERE s.case_id = c.id AND s.subject_type = {})"),
    (
        "subject",
        "EXISTS (SELECT 1 FROM case_subject s WHERE s.case_id = c.id AND s.subject_type = {} "
        "AND s.subject_id = {})",
    ),
    ("after_id", "c.id > {}"),
)
_MAJOR = {
    True: "(c.needs_legal_review OR c.needs_filing)",
    False: "NOT (c.needs_legal_review OR c.needs_filing)",
}
_CASE_LIST_SQL: dict[tuple[Any, ...], str] = {}


def case_list_sql(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """The case list as one statement for the driver: scope by bureau path, today's date for
    ``overdue``, the filters given, keyset by id. Built once per shape of the filters."""
    values = {name: filters.get(name) for name, _ in _CASE_FILTERS}
    if values["subject_type"] is not None and filters.get("subject_id") is not None:
        values["subject"] = (values.pop("subject_type"), filters["subject_id"])
        values["subject_type"] = None
    present = tuple(name for name, _ in _CASE_FILTERS if values.get(name) is not None)
    shape = (present, filters.get("major"))
    sql = _CASE_LIST_SQL.get(shape)
    if sql is None:
        where, place = ["c.bureau_path LIKE $2 ESCAPE '/'"], 3
        for name, condition in _CASE_FILTERS:
            if name in present:
                count = condition.count("{}")
                where.append(condition.format(*(f"${place + i}" for i in range(count))))
                place += count
        if filters.get("major") is not None:
            where.append(_MAJOR[filters["major"]])
        columns, conditions = CASE_SUMMARY_COLUMNS, " AND ".join(where)
        sql = _CASE_LIST_SQL[shape] = (
            f'SELECT {columns} FROM "case" c WHERE {conditions} ORDER BY c.id LIMIT ${place}'  # noqa: S608
        )
    args = [filters["today"], like_prefix(filters["path"])]
    for name in present:
        args += list(values[name]) if name == "subject" else [values[name]]
    args.append(filters["limit"])
    return sql, args


async def list_cases(db: Database, filters: dict[str, Any]) -> list[Any]:
    sql, args = case_list_sql(filters)
    names = tuple(f"a{i}" for i in range(len(args)))
    return await db.fetch_all(DriverQuery(sql, names, {}), **dict(zip(names, args, strict=True)))


async def cases_of_subject(
    session: AsyncSession, subject_type: str, subject_id: int, within_path: str
) -> list[Case]:
    query = (
        select(Case)
        .join(CaseSubject, col(CaseSubject.case_id) == col(Case.id))
        .where(
            CaseSubject.subject_type == subject_type,
            CaseSubject.subject_id == subject_id,
            col(Case.bureau_path).startswith(within_path),
        )
        .order_by(col(Case.id))
        .limit(200)
    )
    return list((await session.exec(query)).all())


async def leads_of_subject(
    session: AsyncSession, subject_type: str, subject_id: int, within_path: str
) -> list[Lead]:
    query = (
        select(Lead)
        .where(
            Lead.subject_type == subject_type,
            Lead.subject_id == subject_id,
            col(Lead.bureau_path).startswith(within_path),
        )
        .order_by(col(Lead.id))
        .limit(200)
    )
    return list((await session.exec(query)).all())


async def hearing(session: AsyncSession, case_id: int, *, for_update: bool = False) -> CaseHearing | None:
    query = select(CaseHearing).where(CaseHearing.case_id == case_id)
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def lock_evidence(session: AsyncSession, case_id: int, evidence_id: int) -> Evidence | None:
    query = select(Evidence).where(Evidence.id == evidence_id, Evidence.case_id == case_id).with_for_update()
    return (await session.exec(query)).first()
