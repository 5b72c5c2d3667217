"""Inspection HTTP API: thin handlers that parse, authorize, call the service, respond."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from services.common.auth import Role
from services.common.concurrency import etag
from services.common.dates import LegalDate
from services.common.deps import scoped_loader
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
from services.registry.inspections import repository, service
from services.registry.inspections.models import Inspection, InspectionResult, InspectionTarget
from services.registry.inspections.schemas import InspectionCreate, InspectionRead, InspectionUpdate

PREFIX = "/api/v1/registry"
router = APIRouter(prefix=PREFIX, tags=["inspections"])
PageDep = Annotated[PageParams, Depends(page_params)]
# The inspection the path names, locked for a correction; 404 outside the principal's scope.
InspectionForUpdate = Annotated[
    Inspection,
    Depends(
        scoped_loader(repository.lock_inspection, noun="inspection", roles=(Role.SUPERVISION, Role.ADMIN))
    ),
]


@router.get(
    "/inspections",
    response_model=Page[InspectionRead],
    summary="List the inspections of the principal's subtree",
    description=(
        "Inspections (监督检查) by the certification supervision bodies of the principal's bureau "
        "and the bureaus under it, oldest first. Filter by target (`target_type`, with `target_id`), "
        "`result`, the inspecting `bureau_id` and a window of `inspected_on` dates."
    ),
    responses=problem_responses(),
)
async def list_inspections(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: PageDep,
    target_type: InspectionTarget | None = None,
    target_id: IdQuery = None,
    result: InspectionResult | None = None,
    bureau_id: Annotated[IdQuery, Query(description="The inspecting bureau")] = None,
    inspected_from: Annotated[
        LegalDate | None, Query(description="Inspected on or after this date (YYYY-MM-DD)")
    ] = None,
    inspected_to: Annotated[
        LegalDate | None, Query(description="Inspected on or before this date (YYYY-MM-DD)")
    ] = None,
) -> Page[InspectionRead]:
    filters = {"target_type": target_type, "target_id": target_id, "result": result, "bureau_id": bureau_id}
    items, next_cursor = await service.list_inspections(
        session, principal, filters, inspected_from, inspected_to, page.cursor, page.limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/inspections/{inspection_id}",
    response_model=InspectionRead,
    summary="Read one inspection",
    description="One inspection (监督检查) with its officers and, if non-compliant, its referral's state.",
    responses=problem_responses(404),
)
async def get_inspection(
    session: ReadSessionDep, principal: PrincipalDep, inspection_id: IdPath, response: Response
) -> InspectionRead:
    inspection = await service.read_inspection(session, principal, inspection_id)
    response.headers["ETag"] = etag(inspection.version)
    return inspection


@router.post(
    "/inspections",
    response_model=InspectionRead,
    status_code=status.HTTP_201_CREATED,
    summary="Record an inspection",
    description=(
        "Records an inspection (监督检查) of a certification body, auditor, enterprise, certificate "
        "or product by at least two officers (`/problems/too-few-officers`), each active "
        "(`/problems/officer-inactive`) and of the inspecting bureau or a bureau under it "
        "(`/problems/officer-outside-bureau`). A `non_compliant` result refers the inspection to the "
        "enforcement body as a lead: the `registry.inspection.referred` event is written with it. "
        "Needs the supervision or administrator role."
    ),
    responses=problem_responses(403, 404, 409),
)
async def create_inspection(
    session: SessionDep,
    audit: AuditDep,
    principal: InspectionWriter,
    data: InspectionCreate,
    response: Response,
) -> InspectionRead:
    inspection = await service.create_inspection(session, audit, principal, data)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/inspections/{inspection.id}"
    response.headers["ETag"] = etag(inspection.version)
    return inspection


@router.patch(
    "/inspections/{inspection_id}",
    response_model=InspectionRead,
    summary="Correct an inspection's findings or result (If-Match required)",
    description=(
        "Corrects the findings or the result of an inspection (监督检查) that has not been referred; "
        "a correction to `non_compliant` refers it. A referred inspection is what the enforcement "
        "body received and is refused (`/problems/inspection-referred`)."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def update_inspection(
    session: SessionDep,
    audit: AuditDep,
    principal: InspectionWriter,
    inspection: InspectionForUpdate,
    data: InspectionUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> InspectionRead:
    corrected = await service.update_inspection(session, audit, principal, inspection, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(corrected.version)
    return corrected
