"""Officers' declared conflicts of interest (回避) HTTP API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses
from services.common.types import IdPath
from services.registry.deps import AuditDep, PrincipalDep, ReadSessionDep, SessionDep
from services.registry.plans import conflicts as service
from services.registry.plans.task_schemas import ConflictCreate, ConflictRead

PREFIX = "/api/v1/registry"
CONFLICTS = "/officers/{officer_id}/conflicts"
router = APIRouter(prefix=PREFIX, tags=["inspection plans"])
PageDep = Annotated[PageParams, Depends(page_params)]

_WHO = (
    "The officer himself, or an administrator or supervision principal whose subtree holds the "
    "officer (another role: 403); an officer outside the principal's subtree is not found (404)."
)


@router.post(
    CONFLICTS,
    response_model=ConflictRead,
    status_code=status.HTTP_201_CREATED,
    operation_id="declare_officer_conflict",
    summary="Declare an officer's conflict of interest with a subject",
    description=(
        "Records a conflict of interest (回避) of an officer with a certification body, auditor, "
        "enterprise or certificate: the draw of an inspection plan never assigns him that subject. "
        "The subject must exist (422 on `body.subject_id`); a second declaration of the same "
        "subject is refused (`/problems/conflict-already-declared`). " + _WHO
    ),
    responses=problem_responses(403, 404, 409),
)
async def declare_officer_conflict(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    officer_id: IdPath,
    data: ConflictCreate,
    response: Response,
) -> ConflictRead:
    conflict = await service.declare_conflict(session, audit, principal, officer_id, data)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/officers/{officer_id}/conflicts/{conflict.id}"
    return conflict


@router.get(
    CONFLICTS,
    response_model=Page[ConflictRead],
    operation_id="list_officer_conflicts",
    summary="List an officer's declared conflicts of interest",
    description="The conflicts of interest (回避) an officer declared, oldest first. " + _WHO,
    responses=problem_responses(403, 404),
)
async def list_officer_conflicts(
    session: ReadSessionDep, principal: PrincipalDep, officer_id: IdPath, page: PageDep
) -> Page[ConflictRead]:
    items, next_cursor = await service.list_conflicts(session, principal, officer_id, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    CONFLICTS + "/{conflict_id}",
    response_model=ConflictRead,
    operation_id="get_officer_conflict",
    summary="Read one declared conflict of interest",
    description="One conflict of interest (回避) an officer declared. " + _WHO,
    responses=problem_responses(403, 404),
)
async def get_officer_conflict(
    session: ReadSessionDep, principal: PrincipalDep, officer_id: IdPath, conflict_id: IdPath
) -> ConflictRead:
    return await service.read_conflict(session, principal, officer_id, conflict_id)
