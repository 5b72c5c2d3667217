"""Catalogue HTTP API: the violation catalogue, the thresholds in force, the penalty dry run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from services.common.auth import Principal, Role
from services.common.deps import (
    AuditDep,
    Authorize,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
    require_national_roles,
)
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses
from services.common.types import IdPath, IdQuery
from services.enforcement.catalogue import service
from services.enforcement.catalogue.models import ThresholdKind
from services.enforcement.catalogue.schemas import (
    PenaltyCheckRead,
    PenaltyCheckRequest,
    ThresholdRead,
    ThresholdsRead,
    ThresholdsUpdate,
    ViolationCreate,
    ViolationRead,
)

PREFIX = "/api/v1/enforcement"
violations_router = APIRouter(prefix=PREFIX, tags=["violations"])
thresholds_router = APIRouter(prefix=PREFIX, tags=["thresholds"])
PageDep = Annotated[PageParams, Depends(page_params)]
# Adds regulation texts to the catalogue: an administrator of the national regulator.
CatalogueAdmin = Annotated[Principal, require_national_roles(Role.ADMIN)]
# Sets a province's own thresholds: an administrator of that provincial bureau, or national.
ThresholdAdmin = Authorize(Role.ADMIN)
ShortText = Annotated[str | None, Query(min_length=1, max_length=100)]


@violations_router.get(
    "/violations",
    response_model=Page[ViolationRead],
    summary="List the violation catalogue",
    description=(
        "The violation catalogue (违法行为目录) by regulation text: each violation with its article, "
        "stable code, fine range in yuan (null: the article sets no fine) and other sanctions. "
        "Filter by `regulation`, `article`, `code` and `q` (part of the title)."
    ),
    responses=problem_responses(),
)
async def list_violations(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: PageDep,
    regulation: ShortText = None,
    article: ShortText = None,
    code: ShortText = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="Part of the title")] = None,
) -> Page[ViolationRead]:
    filters = {"regulation": regulation, "article": article, "code": code, "title_contains": q}
    items, next_cursor = await service.list_violations(session, filters, page.cursor, page.limit)
    return Page(items=[ViolationRead.model_validate(v) for v in items], next_cursor=next_cursor)


@violations_router.get(
    "/violations/{violation_id}",
    response_model=ViolationRead,
    summary="Read one violation",
    description="One violation (违法行为) of the catalogue with its fine range and sanctions.",
    responses=problem_responses(404),
)
async def get_violation(
    session: ReadSessionDep, principal: PrincipalDep, violation_id: IdPath
) -> ViolationRead:
    return ViolationRead.model_validate(await service.read_violation(session, violation_id))


@violations_router.post(
    "/violations",
    response_model=ViolationRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a violation of a regulation text",
    description=(
        "Adds a violation (违法行为) of a regulation text to the catalogue, e.g. of a new text of the "
        "regulations: earlier texts keep their rows, and a case names (regulation, code). `fine_min` "
        "may not exceed `fine_max` (422); a code already in the text is refused "
        "(`/problems/violation-exists`). Needs the administrator role at the national regulator."
    ),
    responses=problem_responses(403, 409),
)
async def create_violation(
    session: SessionDep, audit: AuditDep, principal: CatalogueAdmin, data: ViolationCreate, response: Response
) -> ViolationRead:
    violation = await service.add_violation(session, audit, principal, data.model_dump())
    read = ViolationRead.model_validate(violation)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/violations/{read.id}"
    return read


@thresholds_router.get(
    "/thresholds",
    response_model=ThresholdsRead,
    summary="The thresholds in force for a province",
    description=(
        "The thresholds of hearing (听证), legal review (法制审核, major meaning 1) and filing "
        "(备案, major meaning 2) in force for the principal's province: the province's own rows, and "
        "the defaults where it has none (`source` tells which), with the procedure rules in force "
        "today (simple procedure 简易程序, late-payment surcharge 加处罚款). The national regulator may "
        "name any `province_bureau_id`; another province is not found for anyone else."
    ),
    responses=problem_responses(404),
)
async def read_thresholds(
    session: ReadSessionDep,
    principal: PrincipalDep,
    province_bureau_id: Annotated[
        IdQuery, Query(description="Another province (national regulator only)")
    ] = None,
) -> ThresholdsRead:
    province = service.province_for(principal, province_bureau_id)
    rows = await service.thresholds_in_force(session, province)
    rules = await service.rules_json(session, service.today())
    return ThresholdsRead(
        province_bureau_id=province, thresholds=[ThresholdRead(**r) for r in rows], rules=rules
    )


@thresholds_router.put(
    "/thresholds/{kind}/provinces/{bureau_id}",
    response_model=list[ThresholdRead],
    summary="Set a province's own thresholds of one kind",
    description=(
        "Replaces the province's own rows of one kind (`hearing`, `legal_review`, `filing`); each "
        "row overrides the default of its bureau level and party kind, and an empty list returns "
        "the province to the defaults. Answers the rows of that kind now in force. Needs the "
        "administrator role, at that provincial bureau (省局) or the national regulator; any other "
        "province is not found. Audited."
    ),
    responses=problem_responses(403, 404),
)
async def set_thresholds(
    session: SessionDep,
    audit: AuditDep,
    principal: ThresholdAdmin,
    kind: ThresholdKind,
    bureau_id: IdPath,
    data: ThresholdsUpdate,
) -> list[ThresholdRead]:
    service.check_province_admin(principal, bureau_id)
    rows = [row.model_dump() for row in data.rows]
    in_force = await service.set_province_thresholds(session, audit, principal, kind, bureau_id, rows)
    await session.commit()
    return [ThresholdRead(**r) for r in in_force]


@thresholds_router.post(
    "/penalty-checks",
    response_model=PenaltyCheckRead,
    summary="Check a proposed penalty (dry run)",
    description=(
        "Checks a proposed penalty (行政处罚) before it is proposed: the fine against the range of "
        "the violation's article (`/problems/fine-outside-range`, with `fine_min`, `fine_max`, "
        "`regulation`, `article` and `violation`; an unknown violation is "
        "`/problems/unknown-violation`), and whether the party may ask for a hearing (听证), the "
        "case needs legal review (法制审核) and a collective decision, must be filed (备案) with the "
        "next level up, and may go through the simple procedure (简易程序), each with its reasons "
        "and the thresholds applied. The bureau level and province default to the principal's. "
        "Nothing is stored."
    ),
    responses=problem_responses(404, 409),
)
async def check_penalty(
    session: ReadSessionDep, principal: PrincipalDep, data: PenaltyCheckRequest
) -> PenaltyCheckRead:
    result = await service.check_penalty(session, principal, data)
    return PenaltyCheckRead.model_validate(
        {
            **result,
            "violation": ViolationRead.model_validate(result["violation"]),
            **{
                flag: vars(result[flag]) for flag in ("hearing", "legal_review", "filing", "simple_procedure")
            },
        }
    )


routers = [violations_router, thresholds_router]
