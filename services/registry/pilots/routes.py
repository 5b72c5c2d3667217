"""Pilot designation HTTP API: thin handlers that parse, authorize, call the service, respond."""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from services.common.auth import Role
from services.common.concurrency import etag
from services.common.deps import scoped_loader
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses
from services.common.types import IdPath
from services.registry.deps import AuditDep, IfMatchDep, NetworkAdmin, ReadSessionDep, SessionDep
from services.registry.network import repository as network_repo
from services.registry.network.models import Bureau
from services.registry.pilots import service
from services.registry.pilots.schemas import (
    PilotDesignationCreate,
    PilotDesignationRead,
    PilotDesignationWithdrawal,
)

PREFIX = "/api/v1/registry"
router = APIRouter(prefix=PREFIX, tags=["pilot designations"])
PageDep = Annotated[PageParams, Depends(page_params)]
# The provincial unit the path names, in the principal's scope (404 otherwise, as if missing).
UnitDep = Annotated[
    Bureau,
    Depends(
        scoped_loader(network_repo.get_bureau, noun="bureau", bureau_path=attrgetter("path"), read_only=True)
    ),
]
UnitForWriteDep = Annotated[
    Bureau,
    Depends(
        scoped_loader(
            network_repo.get_bureau, noun="bureau", bureau_path=attrgetter("path"), roles=(Role.ADMIN,)
        )
    ),
]


def _location(designation: PilotDesignationRead) -> str:
    return f"{PREFIX}/bureaus/{designation.provincial_bureau_id}/pilot-designations/{designation.id}"


@router.get(
    "/bureaus/{bureau_id}/pilot-designations",
    response_model=Page[PilotDesignationRead],
    summary="History of a provincial pilot unit's grassroots pilot designations",
    description=(
        "The grassroots pilot units (基层试点单位) a provincial pilot unit (省级试点单位) has named, "
        "oldest first; at most one is current. Readable within the principal's scope."
    ),
    responses=problem_responses(404),
)
async def list_pilot_designations(
    session: ReadSessionDep, unit: UnitDep, page: PageDep
) -> Page[PilotDesignationRead]:
    items, next_cursor = await service.list_designations(session, unit, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/bureaus/{bureau_id}/pilot-designations/{designation_id}",
    response_model=PilotDesignationRead,
    summary="Read one grassroots pilot designation",
    description="One designation of a provincial pilot unit (试点单位), with its ETag.",
    responses=problem_responses(404),
)
async def get_pilot_designation(
    session: ReadSessionDep, unit: UnitDep, designation_id: IdPath, response: Response
) -> PilotDesignationRead:
    designation = await service.read_designation(session, unit.id, designation_id)  # type: ignore[arg-type]
    response.headers["ETag"] = etag(designation.version)
    return designation


@router.post(
    "/bureaus/{bureau_id}/pilot-designations",
    response_model=PilotDesignationRead,
    status_code=status.HTTP_201_CREATED,
    summary="Name the provincial pilot unit's grassroots pilot unit",
    description=(
        "A provincial pilot unit (省级试点单位) names its one grassroots pilot unit (基层试点单位) "
        "within its own subtree, with the date it was reported: a branch bureau for an entry-exit "
        "unit, a city or county bureau for a quality-supervision unit. The named bureau's `pilot` "
        "becomes `grassroots`. An administrator of the unit or of a bureau above it. Refused "
        "(`/problems/pilot-already-designated`) while another designation is current; "
        "`/problems/not-a-pilot-unit`, `/problems/grassroots-outside-unit` and "
        "`/problems/grassroots-level-mismatch` name the other rules."
    ),
    responses=problem_responses(403, 404, 409),
)
async def create_pilot_designation(
    session: SessionDep,
    audit: AuditDep,
    principal: NetworkAdmin,
    unit: UnitForWriteDep,
    data: PilotDesignationCreate,
    response: Response,
) -> PilotDesignationRead:
    designation = await service.create_designation(session, audit, principal, unit, data)
    await session.commit()
    response.headers["Location"] = _location(designation)
    response.headers["ETag"] = etag(designation.version)
    return designation


@router.post(
    "/bureaus/{bureau_id}/pilot-designations/{designation_id}/withdrawal",
    response_model=PilotDesignationRead,
    summary="Withdraw the current grassroots pilot designation (If-Match required)",
    description=(
        "Ends a grassroots pilot designation (撤回基层试点单位) on the given date with its reason, "
        "so the provincial unit may name another; the bureau's `pilot` returns to `none`. "
        "Send the designation's ETag in If-Match. `/problems/pilot-designation-withdrawn` when it "
        "was already withdrawn, `/problems/withdrawal-before-report` for a date before the report."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def withdraw_pilot_designation(
    session: SessionDep,
    audit: AuditDep,
    principal: NetworkAdmin,
    unit: UnitForWriteDep,
    designation_id: IdPath,
    data: PilotDesignationWithdrawal,
    response: Response,
    if_match: IfMatchDep = None,
) -> PilotDesignationRead:
    designation = await service.withdraw_designation(
        session, audit, principal, unit, designation_id, data, if_match
    )
    await session.commit()
    response.headers["ETag"] = etag(designation.version)
    return designation
