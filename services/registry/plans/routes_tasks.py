"""Inspection task HTTP API (抽查任务): thin handlers that parse, authorize, call the service, respond."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from services.common.concurrency import etag
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses
from services.common.types import IdPath, IdQuery
from services.registry.deps import (
    AuditDep,
    IfMatchDep,
    InspectionWriter,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
)
from services.registry.plans import tasks as service
from services.registry.plans.models import PlanSubject, TaskState
from services.registry.plans.task_schemas import TaskRead, TaskResultCreate

PREFIX = "/api/v1/registry"
TASKS = "/inspection-tasks"
router = APIRouter(prefix=PREFIX, tags=["inspection plans"])
PageDep = Annotated[PageParams, Depends(page_params)]


@router.get(
    TASKS,
    response_model=Page[TaskRead],
    operation_id="list_inspection_tasks",
    summary="List inspection tasks",
    description=(
        'The inspection tasks (抽查任务) of drawn "double random, one public" (双随机、一公开) plans: '
        "those of the principal's subtree, and those the calling officer is drawn for, oldest first. "
        "Filter by `plan_id`, `state`, `subject_type`; `overdue=true` lists the open tasks past their "
        "due date (Asia/Shanghai), `overdue=false` the others; `mine=true` only the calling officer's "
        "(a token naming no officer is a 422)."
    ),
    responses=problem_responses(),
)
async def list_inspection_tasks(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: PageDep,
    plan_id: IdQuery = None,
    state: TaskState | None = None,
    subject_type: PlanSubject | None = None,
    overdue: Annotated[bool | None, Query(description="Open and past the due date")] = None,
    mine: Annotated[bool, Query(description="Only the tasks the calling officer is drawn for")] = False,
) -> Page[TaskRead]:
    filters = {"plan_id": plan_id, "state": state, "subject_type": subject_type}
    items, next_cursor = await service.list_tasks(
        session, principal, filters, overdue=overdue, mine=mine, cursor=page.cursor, limit=page.limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    TASKS + "/{task_id}",
    response_model=TaskRead,
    operation_id="get_inspection_task",
    summary="Read one inspection task",
    description=(
        "One inspection task (抽查任务): the subject drawn, its stratum, due date and state, the "
        "officers drawn for it, and once done the inspection (监督检查) recorded as its result."
    ),
    responses=problem_responses(404),
)
async def get_inspection_task(
    session: ReadSessionDep, principal: PrincipalDep, task_id: IdPath, response: Response
) -> TaskRead:
    task = await service.read_task(session, principal, task_id)
    response.headers["ETag"] = etag(task.version)
    return task


@router.post(
    TASKS + "/{task_id}/result",
    response_model=TaskRead,
    status_code=status.HTTP_201_CREATED,
    operation_id="record_inspection_task_result",
    summary="Record an inspection task's result (If-Match required)",
    description=(
        "Records the result of an inspection task (抽查结果) as the registry's inspection (监督检查) of "
        "the subject by the task's drawn officers, for the plan's bureau: a `non_compliant` result is "
        "referred to the enforcement body as a lead (`registry.inspection.referred`). One of the "
        "task's drawn officers records it, or a supervision or administrator principal of the "
        "subtree; a supervision officer the draw left out is refused (`/problems/not-drawn`). "
        "A done task takes no second result (`/problems/task-done`); the inspection day is not "
        "before the draw (`/problems/inspected-before-draw`); a closed plan takes none "
        "(`/problems/plan-closed`). `Location` names the inspection."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def record_inspection_task_result(
    session: SessionDep,
    audit: AuditDep,
    principal: InspectionWriter,
    task_id: IdPath,
    data: TaskResultCreate,
    response: Response,
    if_match: IfMatchDep = None,
) -> TaskRead:
    task = await service.record_result(session, audit, principal, task_id, data, if_match)
    await session.commit()
    assert task.inspection is not None
    response.headers["Location"] = f"{PREFIX}/inspections/{task.inspection.id}"
    response.headers["ETag"] = etag(task.version)
    return task
