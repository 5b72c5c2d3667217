"""Inspection tasks (抽查任务) of drawn plans, and their results.

A task is one drawn subject of a plan, for the officers drawn for it, due on a
working day. It is seen by the principals whose subtree holds the plan's bureau
and by the officers drawn for it (a county officer drawn for a provincial plan
sees his own task). Its result is recorded by one of its drawn officers, or by
a supervision or administrator principal of the subtree that is not itself an
officer left out by the draw: the inspection is written through the registry's
inspections service with the task's drawn officers, so a non-compliant result
is referred to the enforcement body exactly like any inspection. Functions here
never commit.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from sqlalchemy import Boolean, and_, case, cast, exists, func, literal, or_
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal, Role
from services.common.concurrency import check_if_match
from services.common.dates import today
from services.common.db import utcnow
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, Forbidden, NotFound, UnprocessableEntity
from services.registry.inspections import service as inspections
from services.registry.inspections.models import Inspection, InspectionTarget
from services.registry.inspections.repository import TARGETS
from services.registry.inspections.schemas import InspectionCreate
from services.registry.network.models import Officer
from services.registry.plans.models import (
    InspectionPlan,
    InspectionTask,
    PlanState,
    TaskOfficer,
    TaskState,
)
from services.registry.plans.task_schemas import TaskRead, TaskResultCreate

_task = InspectionTask.__table__  # type: ignore[attr-defined]
_plan = InspectionPlan.__table__  # type: ignore[attr-defined]
_link = TaskOfficer.__table__  # type: ignore[attr-defined]
_officer = Officer.__table__  # type: ignore[attr-defined]
_inspection = Inspection.__table__  # type: ignore[attr-defined]


def subject_name(type_column, id_column):
    """The subject's name (a certificate's number); only its own type's subquery is evaluated."""
    return case(
        *(
            (
                type_column == kind.value,
                core_select(table.c[column]).where(table.c.id == id_column).scalar_subquery(),
            )
            for kind, (table, column) in TARGETS.items()
        ),
        else_=literal(None),
    )


def _overdue(on: date):
    return and_(_task.c.state == TaskState.OPEN.value, _task.c.due_on < on)


_officers = (
    core_select(
        func.coalesce(
            func.jsonb_agg(
                aggregate_order_by(
                    func.jsonb_build_object(
                        "officer_id", _officer.c.id, "name", _officer.c.name, "drawn_rank", _link.c.drawn_rank
                    ),
                    _link.c.drawn_rank,
                )
            ),
            cast(literal("[]"), JSONB),
        )
    )
    .select_from(_link.join(_officer, _officer.c.id == _link.c.officer_id))
    .where(_link.c.task_id == _task.c.id)
    .scalar_subquery()
)


def _task_read(on: date):
    return core_select(
        _task,
        _plan.c.title.label("plan_title"),
        _plan.c.year,
        subject_name(_task.c.subject_type, _task.c.subject_id).label("subject_name"),
        _overdue(on).cast(Boolean).label("overdue"),
        _officers.label("officers"),
        _inspection.c.inspected_on.label("inspection_inspected_on"),
        _inspection.c.result.label("inspection_result"),
        _inspection.c.findings.label("inspection_findings"),
    ).select_from(
        _task.join(_plan, _plan.c.id == _task.c.plan_id).outerjoin(
            _inspection, _inspection.c.id == _task.c.inspection_id
        )
    )


def _drawn(officer_id: int):
    return exists().where(_link.c.task_id == _task.c.id, _link.c.officer_id == officer_id)


def _visible(principal: Principal):
    """Tasks of the principal's subtree, and those the calling officer is drawn for."""
    in_subtree = _task.c.bureau_path.startswith(principal.bureau_path, autoescape=True)
    if principal.officer_id is None:
        return in_subtree
    return or_(in_subtree, _drawn(principal.officer_id))


def _read(row: dict[str, Any]) -> TaskRead:
    inspection = None
    if row["inspection_id"] is not None:
        inspection = {
            "id": row["inspection_id"],
            "inspected_on": row["inspection_inspected_on"],
            "result": row["inspection_result"],
            "findings": row["inspection_findings"],
        }
    return TaskRead.model_validate({**row, "officers": row["officers"] or [], "inspection": inspection})


async def read_task(session: AsyncSession, principal: Principal, task_id: int) -> TaskRead:
    query = _task_read(today()).where(_task.c.id == task_id, _visible(principal))
    row = (await session.exec(query)).mappings().first()
    if row is None:
        raise NotFound(f"Inspection task {task_id} not found.")
    return _read(dict(row))


async def list_tasks(
    session: AsyncSession,
    principal: Principal,
    filters: dict[str, Any],
    *,
    overdue: bool | None,
    mine: bool,
    cursor: str | None,
    limit: int,
) -> tuple[list[TaskRead], str | None]:
    on = today()
    if mine and principal.officer_id is None:
        raise UnprocessableEntity(
            "`mine` lists the calling officer's tasks: the token names no officer.",
            errors=[
                {"loc": "query.mine", "message": "the principal is not an officer", "type": "not_officer"}
            ],
        )
    query = _task_read(on).where(_visible(principal)).order_by(_task.c.id).limit(limit + 1)
    for column, value in filters.items():
        if value is not None:
            query = query.where(_task.c[column] == value)
    if overdue is not None:
        query = query.where(_overdue(on) if overdue else ~_overdue(on))
    if mine:
        query = query.where(_drawn(principal.officer_id))  # type: ignore[arg-type]
    after = decode_cursor(cursor, int)
    if after:
        query = query.where(_task.c.id > after[0])
    rows = [dict(r) for r in (await session.exec(query)).mappings().all()]
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [_read(r) for r in page], next_cursor


# --- results ----------------------------------------------------------------------


async def _drawn_officers(session: AsyncSession, task_id: int) -> list[int]:
    query = core_select(_link.c.officer_id).where(_link.c.task_id == task_id).order_by(_link.c.drawn_rank)
    return list((await session.exec(query)).scalars().all())


def _may_record(principal: Principal, task: InspectionTask, drawn: list[int]) -> None:
    """A drawn officer records his task's result; so does a supervision or administrator
    principal of the subtree, unless it is an officer the draw left out (双随机: the draw,
    not the officer, chooses who inspects) — an administrator records on their behalf."""
    if principal.officer_id is not None and principal.officer_id in drawn:
        return
    if not principal.in_scope(task.bureau_path):
        raise NotFound(f"Inspection task {task.id} not found.")
    if principal.officer_id is not None and not principal.has_role(Role.ADMIN):
        raise Forbidden(
            f"Officer {principal.officer_id} was not drawn for inspection task {task.id}.",
            slug="not-drawn",
            officer_ids=drawn,
        )


async def record_result(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    task_id: int,
    data: TaskResultCreate,
    if_match: str | None,
) -> TaskRead:
    """Record a task's result as the registry's inspection (抽查结果录入); the task is done."""
    task = await session.get(InspectionTask, task_id, with_for_update=True)
    if task is None:
        raise NotFound(f"Inspection task {task_id} not found.")
    drawn = await _drawn_officers(session, task_id)
    _may_record(principal, task, drawn)
    if task.state == TaskState.DONE:
        raise Conflict(
            f"Inspection task {task_id} is done: its result is inspection {task.inspection_id}.",
            slug="task-done",
            inspection_id=task.inspection_id,
        )
    check_if_match(if_match, task.version)
    plan = await session.get(InspectionPlan, task.plan_id)
    assert plan is not None  # a foreign key
    if plan.state == PlanState.CLOSED:
        raise Conflict(f"Plan {plan.id} is closed: its tasks take no more results.", slug="plan-closed")
    if plan.drawn_on is not None and data.inspected_on < plan.drawn_on:
        raise Conflict(
            f"The subject was drawn on {plan.drawn_on}; an inspection of {data.inspected_on} is not "
            "this task's.",
            slug="inspected-before-draw",
            drawn_on=str(plan.drawn_on),
        )
    # The drawn officers act for the plan's bureau: the inspection is that bureau's, whichever
    # bureau under it the recording officer belongs to.
    acting = dataclasses.replace(principal, bureau_id=task.bureau_id, bureau_path=task.bureau_path)
    inspection = await inspections.create_inspection(
        session,
        audit,
        acting,
        InspectionCreate(
            bureau_id=task.bureau_id,
            target_type=InspectionTarget(task.subject_type),
            target_id=task.subject_id,
            inspected_on=data.inspected_on,
            officer_ids=drawn,
            findings=data.findings,
            result=data.result,
        ),
    )
    task.state = TaskState.DONE
    task.inspection_id = inspection.id
    task.version += 1
    task.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        principal,
        "inspection_task.result_recorded",
        "inspection_task",
        task_id,
        {
            **data.model_dump(mode="json"),
            "inspection_id": inspection.id,
            "officer_ids": drawn,
            "referral_event_id": inspection.referral.event_id if inspection.referral else None,
        },
    )
    session.expire_all()
    return await read_task(session, acting, task_id)
