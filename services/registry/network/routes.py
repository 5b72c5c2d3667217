"""Registry HTTP API: thin handlers that parse, authorize, call the service, respond."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from services.common.concurrency import etag
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses
from services.common.responses import fast_json, fast_page
from services.common.types import IdPath, IdQuery
from services.registry.deps import (
    AuditDep,
    DatabaseDep,
    IfMatchDep,
    NetworkAdmin,
    OutboxDep,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
)
from services.registry.network import service
from services.registry.network.models import BodyKind, BureauLevel, BureauSystem, DivisionLevel, PilotRole
from services.registry.network.schemas import (
    BodyRead,
    BureauCreate,
    BureauRead,
    BureauUpdate,
    DivisionRead,
    OfficerCreate,
    OfficerRead,
    OfficerStanding,
    OfficerUpdate,
    PostCreate,
    PostRead,
    PostUpdate,
)

PREFIX = "/api/v1/registry"
router = APIRouter(prefix=PREFIX)
PageDep = Annotated[PageParams, Depends(page_params)]


# --- divisions -------------------------------------------------------------


@router.get(
    "/divisions",
    response_model=Page[DivisionRead],
    tags=["divisions"],
    summary="List administrative divisions (行政区划, GB/T 2260)",
    description=(
        "The administrative divisions (行政区划) by their GB/T 2260 six-digit code: provinces, cities and "
        "counties; filters `parent_code` and `level`. Reference data, readable by every principal."
    ),
    responses=problem_responses(),
)
async def list_divisions(
    session: ReadSessionDep,
    _: PrincipalDep,
    page: PageDep,
    parent_code: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    level: DivisionLevel | None = None,
) -> Page[DivisionRead]:
    items, next_cursor = await service.list_divisions(session, parent_code, level, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/divisions/{code}",
    response_model=DivisionRead,
    tags=["divisions"],
    summary="Read one division",
    description=("One administrative division (行政区划) by its GB/T 2260 code, with its level and parent."),
    responses=problem_responses(404),
)
async def get_division(
    session: ReadSessionDep, _: PrincipalDep, code: Annotated[str, Path(pattern=r"^\d{6}$")]
) -> DivisionRead:
    return DivisionRead.model_validate(await service.get_division(session, code), from_attributes=True)


# --- bureaus ---------------------------------------------------------------


@router.get(
    "/bureaus",
    response_model=Page[BureauRead],
    tags=["bureaus"],
    summary="List the bureaus of the principal's subtree",
    description=(
        "The bureaus (质量技术监督局) of the principal's subtree of the network — provincial, city, "
        "branch and county — by id; filters `parent_id`, `level`, `system`, `pilot` and `under` (a subtree)."
    ),
    responses=problem_responses(404),
)
async def list_bureaus(
    db: DatabaseDep,
    principal: PrincipalDep,
    page: PageDep,
    parent_id: IdQuery = None,
    level: BureauLevel | None = None,
    system: BureauSystem | None = None,
    pilot: PilotRole | None = None,
    under: Annotated[
        IdQuery,
        Query(description="Only this bureau's subtree (itself included); it must lie in the principal's"),
    ] = None,
) -> Response:
    filters = {"parent_id": parent_id, "level": level, "system": system, "pilot": pilot}
    rows, next_cursor = await service.list_bureau_records(
        db, principal, filters, page.cursor, page.limit, under=under
    )
    return fast_page(BureauRead, rows, next_cursor)


@router.get(
    "/bureaus/{bureau_id}",
    response_model=BureauRead,
    tags=["bureaus"],
    summary="Read one bureau",
    description=(
        "One bureau (质量技术监督局) of the principal's subtree, with its path in the network and "
        "its pilot designation (试点); the ETag is for If-Match."
    ),
    responses=problem_responses(404),
)
async def get_bureau(db: DatabaseDep, principal: PrincipalDep, bureau_id: IdPath) -> Response:
    # The hot read: a row on the driver connection, written as BureauRead by fast_json.
    row = await service.read_bureau_record(db, principal, bureau_id)
    return fast_json(BureauRead, row, headers={"ETag": etag(row["version"])})


@router.post(
    "/bureaus",
    response_model=BureauRead,
    status_code=status.HTTP_201_CREATED,
    tags=["bureaus"],
    summary="Create a city, branch or county bureau (or a provincial unit) under a bureau in scope",
    description=(
        "Creates a bureau (质量技术监督局) under a parent in the administrator's subtree, with its three "
        "bodies (监督/执法/法制); the answer carries `Location` and the ETag."
    ),
    responses=problem_responses(403, 404, 409),
)
async def create_bureau(
    session: SessionDep, audit: AuditDep, principal: NetworkAdmin, data: BureauCreate, response: Response
) -> BureauRead:
    bureau = await service.create_bureau(session, audit, principal, data)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/bureaus/{bureau.id}"
    response.headers["ETag"] = etag(bureau.version)
    return bureau


@router.patch(
    "/bureaus/{bureau_id}",
    response_model=BureauRead,
    tags=["bureaus"],
    summary="Rename a bureau or change its pilot designation (If-Match required)",
    description=(
        "Renames a bureau (质量技术监督局) or changes its pilot role (试点单位); send the ETag read in "
        "`If-Match`. An administrator of the bureau's subtree."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def update_bureau(
    session: SessionDep,
    audit: AuditDep,
    principal: NetworkAdmin,
    bureau_id: IdPath,
    data: BureauUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> BureauRead:
    bureau = await service.update_bureau(session, audit, principal, bureau_id, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(bureau.version)
    return bureau


@router.get(
    "/bureaus/{bureau_id}/bodies",
    response_model=list[BodyRead],
    tags=["bureaus"],
    summary="The three bodies of a bureau (supervision, enforcement, legal affairs)",
    description=(
        "The bodies of a bureau: certification supervision (认证监督), enforcement (稽查执法) and legal "
        "affairs (法制), each with its id."
    ),
    responses=problem_responses(404),
)
async def list_bodies(session: ReadSessionDep, principal: PrincipalDep, bureau_id: IdPath) -> list[BodyRead]:
    bodies = await service.list_bodies(session, principal, bureau_id)
    return [BodyRead.model_validate(b, from_attributes=True) for b in bodies]


@router.get(
    "/bureaus/{bureau_id}/posts",
    response_model=Page[PostRead],
    tags=["posts"],
    summary="List the posts (岗位) of a bureau",
    description=(
        "The posts (岗位) of a bureau in the principal's subtree, with their duties and the "
        "penalty-procedure steps their holders may take (执法责任制)."
    ),
    responses=problem_responses(404),
)
async def list_posts(
    session: ReadSessionDep, principal: PrincipalDep, bureau_id: IdPath, page: PageDep
) -> Page[PostRead]:
    items, next_cursor = await service.list_posts(session, principal, bureau_id, page.cursor, page.limit)
    return Page(
        items=[PostRead.model_validate(p, from_attributes=True) for p in items], next_cursor=next_cursor
    )


@router.post(
    "/bureaus/{bureau_id}/posts",
    response_model=PostRead,
    status_code=status.HTTP_201_CREATED,
    tags=["posts"],
    summary="Create a post with its duties",
    description="A post (岗位) of one of the bureau's bodies, with its duties and the steps of the "
    "administrative penalty procedure its holders may take (enforcement responsibility system, "
    "执法责任制). Step codes are the enforcement service's; the registry checks their shape only.",
    responses=problem_responses(403, 404, 409),
)
async def create_post(
    session: SessionDep,
    audit: AuditDep,
    principal: NetworkAdmin,
    bureau_id: IdPath,
    data: PostCreate,
    response: Response,
) -> PostRead:
    post = await service.create_post(session, audit, principal, bureau_id, data)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/posts/{post.id}"
    response.headers["ETag"] = etag(post.version)
    return PostRead.model_validate(post, from_attributes=True)


@router.get(
    "/posts/{post_id}",
    response_model=PostRead,
    tags=["posts"],
    summary="Read one post",
    description="A post (岗位) of a bureau in the principal's subtree, with its duties and the "
    "penalty-procedure steps its holders may take (执法责任制). The ETag is for If-Match.",
    responses=problem_responses(404),
)
async def get_post(
    session: ReadSessionDep, principal: PrincipalDep, post_id: IdPath, response: Response
) -> PostRead:
    post = await service.read_post(session, principal, post_id)
    response.headers["ETag"] = etag(post.version)
    return PostRead.model_validate(post, from_attributes=True)


@router.patch(
    "/posts/{post_id}",
    response_model=PostRead,
    tags=["posts"],
    summary="Change a post's duties or the steps it allows (If-Match required)",
    description="Rebinds duties and authority to a post (岗位) under the enforcement "
    "responsibility system (执法责任制): its duties and / or the administrative penalty "
    "procedure steps its holders may take. An administrator of the post's bureau subtree.",
    responses=problem_responses(403, 404, 412, 428),
)
async def update_post(
    session: SessionDep,
    audit: AuditDep,
    principal: NetworkAdmin,
    post_id: IdPath,
    data: PostUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> PostRead:
    post = await service.update_post(session, audit, principal, post_id, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(post.version)
    return PostRead.model_validate(post, from_attributes=True)


# --- officers --------------------------------------------------------------


@router.get(
    "/officers",
    response_model=Page[OfficerRead],
    tags=["officers"],
    summary="List the officers of the principal's subtree",
    description=(
        "The officers (执法人员) of the principal's subtree, by id; filters `bureau_id`, `body`, "
        "`active` and `name` (part of it)."
    ),
    responses=problem_responses(),
)
async def list_officers(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: PageDep,
    bureau_id: IdQuery = None,
    body: BodyKind | None = None,
    active: bool | None = None,
    name: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[OfficerRead]:
    filters = {"bureau_id": bureau_id, "body": body, "active": active, "name": name}
    items, next_cursor = await service.list_officers(session, principal, filters, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/officers/{officer_id}",
    response_model=OfficerRead,
    tags=["officers"],
    summary="Read one officer",
    description=(
        "One officer (执法人员): bureau, body, post, enforcement credential (执法证) and whether "
        "active; the ETag is for If-Match."
    ),
    responses=problem_responses(404),
)
async def get_officer(
    session: ReadSessionDep, principal: PrincipalDep, officer_id: IdPath, response: Response
) -> OfficerRead:
    officer = await service.read_officer(session, principal, officer_id)
    response.headers["ETag"] = etag(officer.version)
    return officer


@router.post(
    "/officers",
    response_model=OfficerRead,
    status_code=status.HTTP_201_CREATED,
    tags=["officers"],
    summary="Register an officer of a bureau in scope",
    description=(
        "Registers an officer (执法人员) of a bureau in the administrator's subtree, with the post held "
        "and the enforcement credential number (执法证号), unique across the registry."
    ),
    responses=problem_responses(403, 404, 409),
)
async def create_officer(
    session: SessionDep, audit: AuditDep, principal: NetworkAdmin, data: OfficerCreate, response: Response
) -> OfficerRead:
    officer = await service.create_officer(session, audit, principal, data)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/officers/{officer.id}"
    response.headers["ETag"] = etag(officer.version)
    return officer


@router.patch(
    "/officers/{officer_id}",
    response_model=OfficerRead,
    tags=["officers"],
    summary="Change an officer's post, credential or active flag (If-Match required)",
    description=(
        "Changes an officer's (执法人员) post, credential (执法证) or active flag; a deactivation or a "
        "move is sent as `registry.officer.changed`, and the gateway follows it. Send the ETag in `If-Match`."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def update_officer(
    session: SessionDep,
    audit: AuditDep,
    outbox: OutboxDep,
    principal: NetworkAdmin,
    officer_id: IdPath,
    data: OfficerUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> OfficerRead:
    officer = await service.update_officer(session, audit, outbox, principal, officer_id, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(officer.version)
    return officer


@router.get(
    "/officers/{officer_id}/standing",
    response_model=OfficerStanding,
    tags=["officers"],
    summary="An officer's standing to take a step of the penalty procedure",
    description="What the enforcement service checks before an officer takes a step of the "
    "administrative penalty procedure: whether the officer is active, holds an enforcement "
    "credential (执法证), and which steps the officer's post (岗位) allows under the enforcement "
    "responsibility system (执法责任制). Any principal whose subtree holds the officer's bureau, "
    "and a platform service for any officer; otherwise 404.",
    responses=problem_responses(404),
)
async def get_officer_standing(
    session: ReadSessionDep, principal: PrincipalDep, officer_id: IdPath
) -> OfficerStanding:
    return await service.read_officer_standing(session, principal, officer_id)
