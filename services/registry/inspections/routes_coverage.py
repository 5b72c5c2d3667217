"""Supervision coverage HTTP API: a thin handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.common.auth import Role
from services.common.dates import LegalDate
from services.common.deps import Authorize
from services.common.problems import problem_responses
from services.common.types import IdQuery
from services.registry.deps import ReadSessionDep
from services.registry.inspections import coverage
from services.registry.inspections.schemas import SupervisionCoverage

PREFIX = "/api/v1/registry"
router = APIRouter(prefix=PREFIX, tags=["inspections"])
# The statistics service reads it for its aggregates; an administrator reads it for a bureau.
CoverageReader = Authorize(Role.SERVICE, Role.ADMIN)


@router.get(
    "/supervision-coverage",
    response_model=SupervisionCoverage,
    summary="Supervision coverage of a bureau subtree over a period",
    description=(
        "Supervision coverage (监管覆盖面): per kind — certification bodies (认证机构), auditors "
        "(认证人员), certified enterprises (获证企业), certificates (认证证书) — how many the "
        "bureau's subtree keeps and how many of them were inspected (监督检查) at least once "
        "between `from` and `to` inclusive. The bureau (the principal's own if left out) must lie "
        "in the principal's subtree (404 otherwise, as if missing). The platform's services or an "
        "administrator. `to` before `from` is refused (`/problems/validation-error`)."
    ),
    responses=problem_responses(403, 404, 422),
)
async def get_supervision_coverage(
    session: ReadSessionDep,
    principal: CoverageReader,
    date_from: Annotated[LegalDate, Query(alias="from", description="First day (YYYY-MM-DD)")],
    date_to: Annotated[LegalDate, Query(alias="to", description="Last day, inclusive (YYYY-MM-DD)")],
    bureau_id: Annotated[
        IdQuery, Query(description="The subtree's root; the principal's own if left out")
    ] = None,
) -> SupervisionCoverage:
    return await coverage.supervision_coverage(session, principal, bureau_id, date_from, date_to)
