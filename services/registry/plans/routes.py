"""Inspection plan HTTP API: create, draw once, verify, read the frozen pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from services.common.auth import Role
from services.common.concurrency import etag
from services.common.deps import scoped_loader
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses
from services.common.types import IdQuery
from services.registry.deps import AuditDep, InspectionWriter, PrincipalDep, ReadSessionDep, SessionDep
from services.registry.plans import service
from services.registry.plans.draw import RISK_RULES
from services.registry.plans.models import InspectionPlan, PlanState, PlanSubject
from services.registry.plans.schemas import DrawVerification, PlanCreate, PlanRead, PoolMemberRead

PREFIX = "/api/v1/registry"
router = APIRouter(prefix=PREFIX, tags=["inspection plans"])
PageDep = Annotated[PageParams, Depends(page_params)]
PlanToRead = Annotated[
    InspectionPlan, Depends(scoped_loader(service.get_plan, noun="plan", param="plan_id", read_only=True))
]
PlanToDraw = Annotated[
    InspectionPlan,
    Depends(
        scoped_loader(service.lock_plan, noun="plan", param="plan_id", roles=(Role.SUPERVISION, Role.ADMIN))
    ),
]
RULES = "; ".join(f"{kind}: {', '.join(rules)}" for kind, rules in RISK_RULES.items())


def _read(plan: InspectionPlan) -> PlanRead:
    return PlanRead.model_validate(plan, from_attributes=True)


@router.post(
    "/inspection-plans",
    response_model=PlanRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create an inspection plan",
    description=(
        'An inspection plan (抽查计划) of "double random, one public" (双随机、一公开): the subject '
        "pool as a filter over the registry within the planning bureau's subtree, how many to draw "
        "(`draw_count`) or what share (`draw_share`), strata by risk drawn more often (each a rule "
        f"and a weight; the rules per subject type — {RULES}), two or more officers per inspection, "
        "and the working days each task has. Drawn later, once. Needs the supervision or "
        "administrator role."
    ),
    responses=problem_responses(403, 404),
)
async def create_plan(
    session: SessionDep, audit: AuditDep, principal: InspectionWriter, data: PlanCreate, response: Response
) -> PlanRead:
    plan = await service.create_plan(session, audit, principal, data)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/inspection-plans/{plan.id}"
    response.headers["ETag"] = etag(plan.version)
    return _read(plan)


@router.get(
    "/inspection-plans",
    response_model=Page[PlanRead],
    summary="List the inspection plans of the principal's subtree",
    description=(
        "Inspection plans (抽查计划), oldest first; filters `year`, `subject_type`, `state`, `bureau_id`."
    ),
    responses=problem_responses(),
)
async def list_plans(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: PageDep,
    year: int | None = None,
    subject_type: PlanSubject | None = None,
    state: PlanState | None = None,
    bureau_id: IdQuery = None,
) -> Page[PlanRead]:
    filters = {"year": year, "subject_type": subject_type, "state": state, "bureau_id": bureau_id}
    items, next_cursor = await service.list_plans(session, principal, filters, page.cursor, page.limit)
    return Page(items=[_read(p) for p in items], next_cursor=next_cursor)


@router.get(
    "/inspection-plans/{plan_id}",
    response_model=PlanRead,
    summary="Read one inspection plan",
    description=(
        "An inspection plan (抽查计划) with, once drawn, its seed, the frozen pools' sizes and "
        "digests, and the allocation."
    ),
    responses=problem_responses(404),
)
async def get_plan(plan: PlanToRead, response: Response) -> PlanRead:
    response.headers["ETag"] = etag(plan.version)
    return _read(plan)


@router.post(
    "/inspection-plans/{plan_id}/draw",
    response_model=PlanRead,
    summary="Draw the plan (once)",
    description=(
        'The draw (随机抽取) of a "double random" plan. '
        "Freezes the subject pool (its members, order and strata, with a digest) and the officer pool, "
        "records a new random seed, draws the subjects per stratum and two officers for each (never one "
        "who inspected the subject under the previous plan, declared a conflict with it, or — if the "
        "plan says so — belongs to another division), and makes the inspection tasks. A plan is drawn "
        "once (`/problems/plan-already-drawn`); too few eligible officers refuse the draw "
        "(`/problems/not-enough-officers`). The algorithm is in the `verification` route's description."
    ),
    responses=problem_responses(403, 404, 409),
)
async def draw_plan(
    session: SessionDep, audit: AuditDep, principal: PrincipalDep, plan: PlanToDraw, response: Response
) -> PlanRead:
    drawn = await service.draw_plan(session, audit, principal, plan)
    await session.commit()
    response.headers["ETag"] = etag(drawn.version)
    return _read(drawn)


@router.post(
    "/inspection-plans/{plan_id}/verification",
    response_model=DrawVerification,
    summary="Re-run the draw and compare",
    description=(
        "Verification of the draw (抽取复核): "
        "re-runs the draw from the frozen pools, the frozen recusals and the recorded seed, and compares "
        "it with the tasks drawn. The algorithm: in each stratum, members in ascending order of "
        "`md5(seed || ':' || subject_id)` (hex text), the first n_h, where n_h is the plan's count "
        "shared over the strata in proportion to size × weight by largest remainder; for each drawn "
        "subject, the eligible officers in ascending order of `md5(seed || ':' || subject_id || ':' || "
        "officer_id)`, the first two. Digests: SHA-256 of the lines `position,subject_id,stratum`."
    ),
    responses=problem_responses(404, 409),
)
async def verify_draw(session: ReadSessionDep, plan: PlanToRead) -> DrawVerification:
    return await service.verify_draw(session, plan)


@router.get(
    "/inspection-plans/{plan_id}/pool",
    response_model=Page[PoolMemberRead],
    summary="The frozen pool, in its recorded order",
    description=(
        "The subject pool (抽查对象名录库) as frozen at the draw: each member's position, subject "
        "and stratum, keyset pages."
    ),
    responses=problem_responses(404),
)
async def list_plan_pool(session: ReadSessionDep, plan: PlanToRead, page: PageDep) -> Page[PoolMemberRead]:
    items, next_cursor = await service.pool_page(session, plan, page.cursor, page.limit)
    return Page(items=[PoolMemberRead.model_validate(i) for i in items], next_cursor=next_cursor)
