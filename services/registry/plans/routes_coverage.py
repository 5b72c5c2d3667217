"""Coverage HTTP API of inspection plans: thin handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from services.common.deps import scoped_loader
from services.common.problems import problem_responses
from services.common.types import IdQuery
from services.registry.deps import PrincipalDep, ReadSessionDep
from services.registry.plans import coverage
from services.registry.plans.coverage_schemas import PlanCoverage, YearCoverage
from services.registry.plans.models import InspectionPlan

PREFIX = "/api/v1/registry"
router = APIRouter(prefix=PREFIX, tags=["inspection plans"])


async def _get_plan(session, plan_id: int) -> InspectionPlan | None:
    return await session.get(InspectionPlan, plan_id)


# The plan the path names, read-only; 404 outside the principal's scope, like a missing one.
PlanToRead = Annotated[
    InspectionPlan,
    Depends(scoped_loader(_get_plan, noun="inspection plan", param="plan_id", read_only=True)),
]


@router.get(
    "/inspection-plans/{plan_id}/coverage",
    response_model=PlanCoverage,
    summary="Coverage of a drawn inspection plan, by stratum",
    description=(
        'The coverage (抽查覆盖率) of a drawn "double random, one public" (双随机、一公开) plan, '
        "per stratum of its frozen pool: the pool size N_h, the stratum's weight, the members "
        "drawn n_h, each member's chance of being drawn (n_h / N_h, exact for this design), the "
        "tasks done and the share of the stratum's pool actually inspected; and the same for the "
        "whole pool. A plan not drawn yet has no frozen pool (`/problems/plan-not-drawn`)."
    ),
    responses=problem_responses(404, 409),
)
async def get_plan_coverage(session: ReadSessionDep, plan: PlanToRead) -> PlanCoverage:
    return await coverage.plan_coverage(session, plan)


@router.get(
    "/inspection-coverage",
    response_model=YearCoverage,
    summary="Coverage of a bureau's inspection plans of a year",
    description=(
        'The coverage (抽查覆盖率) of the drawn "double random, one public" (双随机、一公开) plans '
        "of a bureau for a year: per subject type and stratum, the pool memberships, the distinct "
        "subjects, the members drawn, the mean chance of being drawn and the share inspected; per "
        "subject type, each subject's chance of being drawn at least once in the year and the "
        "share of the subjects inspected; and the plans counted. The bureau (the principal's own "
        "if left out) must lie in the principal's subtree (404 otherwise); `subtree=true` counts "
        "the plans of the bureaus under it too."
    ),
    responses=problem_responses(404),
)
async def get_year_coverage(
    session: ReadSessionDep,
    principal: PrincipalDep,
    year: Annotated[int, Query(ge=2000, le=2100, description="The plans' year")],
    bureau_id: Annotated[
        IdQuery, Query(description="The planning bureau; the principal's own if left out")
    ] = None,
    subtree: Annotated[bool, Query(description="Count the plans of the bureaus under it too")] = False,
) -> YearCoverage:
    return await coverage.year_coverage(session, principal, year, bureau_id, subtree)
