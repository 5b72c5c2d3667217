"""HTTP API of certification bodies, auditors and certification activities.

Readable by every authenticated principal; written by a ``RegistryWriter``
(supervision, admin or a provincial system) within its bureau's subtree.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from services.common.concurrency import etag
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses
from services.common.types import IdPath, IdQuery
from services.registry.certification import service
from services.registry.certification.models import ActivityKind, AuditorStatus, BodyStatus, CertificateScheme
from services.registry.certification.schemas import (
    ActivityCreate,
    ActivityRead,
    AffiliationCreate,
    AffiliationEnd,
    AffiliationRead,
    AuditorCreate,
    AuditorRead,
    AuditorUpdate,
    BodyCreate,
    BodyRead,
    BodyUpdate,
)
from services.registry.deps import (
    AuditDep,
    AuditorToWrite,
    BodyToWrite,
    IfMatchDep,
    PrincipalDep,
    ReadSessionDep,
    RegistryWriter,
    SessionDep,
)

PREFIX = "/api/v1/registry"
BODIES = f"{PREFIX}/certification-bodies"
AUDITORS = f"{PREFIX}/auditors"
ACTIVITIES = f"{PREFIX}/certification-activities"
router = APIRouter(prefix=PREFIX)
PageDep = Annotated[PageParams, Depends(page_params)]
NameSearch = Annotated[
    str | None, Query(min_length=1, max_length=64, description="Part of the name (case-insensitive)")
]

BODY_TAG = "certification bodies"
AUDITOR_TAG = "auditors"
ACTIVITY_TAG = "certification activities"


# --- certification bodies ---------------------------------------------------


@router.get(
    "/certification-bodies",
    response_model=Page[BodyRead],
    tags=[BODY_TAG],
    summary="List certification bodies (认证机构)",
    responses=problem_responses(),
)
async def list_certification_bodies(
    session: ReadSessionDep,
    _: PrincipalDep,
    page: PageDep,
    status: BodyStatus | None = None,
    scheme: Annotated[
        CertificateScheme | None, Query(description="Bodies whose approved schemes include it")
    ] = None,
    ccc_designation: Annotated[
        str | None, Query(pattern=r"^[0-9]{4}$", description="Bodies designated for this CCC category")
    ] = None,
    q: NameSearch = None,
    bureau_id: Annotated[IdQuery, Query(description="Bodies recorded by this bureau")] = None,
    approval_number: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[BodyRead]:
    """Certification bodies (认证机构) approved by the regulator, by id; readable by every principal."""
    filters = {
        "status": status,
        "scheme": scheme,
        "ccc_designation": ccc_designation,
        "q": q,
        "bureau_id": bureau_id,
        "approval_number": approval_number.strip().upper() if approval_number else None,
    }
    items, next_cursor = await service.list_bodies(session, filters, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/certification-bodies/{body_id}",
    response_model=BodyRead,
    tags=[BODY_TAG],
    summary="Read one certification body",
    responses=problem_responses(404),
)
async def get_certification_body(
    session: ReadSessionDep, _: PrincipalDep, body_id: IdPath, response: Response
) -> BodyRead:
    """A certification body (认证机构) with its approval (批准书): whether it has expired and
    whether renewal is due (within 30 days of expiry)."""
    body = await service.read_body(session, body_id)
    response.headers["ETag"] = etag(body.version)
    return body


@router.post(
    "/certification-bodies",
    response_model=BodyRead,
    status_code=201,
    tags=[BODY_TAG],
    summary="Record a certification body (认证机构)",
    responses=problem_responses(403, 404, 409),
)
async def create_certification_body(
    session: SessionDep, audit: AuditDep, principal: RegistryWriter, data: BodyCreate, response: Response
) -> BodyRead:
    """Record a certification body (认证机构) with its approval number (批准号, CNCA-R-YYYY-NNN),
    approval dates (six years unless the expiry is given), approved schemes and CCC
    designations. A taken approval number is 409 `/problems/approval-number-taken`."""
    body = await service.create_body(session, audit, principal, data)
    await session.commit()
    response.headers["Location"] = f"{BODIES}/{body.id}"
    response.headers["ETag"] = etag(body.version)
    return body


@router.patch(
    "/certification-bodies/{body_id}",
    response_model=BodyRead,
    tags=[BODY_TAG],
    summary="Change a certification body's record (If-Match required)",
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def update_certification_body(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    body: BodyToWrite,
    data: BodyUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> BodyRead:
    """Change a certification body's (认证机构) name, codes, approval dates (a renewal),
    scope or status (approved, suspended 暂停, revoked 撤销, expired)."""
    changed = await service.update_body(session, audit, principal, body, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(changed.version)
    return changed


# --- auditors -----------------------------------------------------------------


@router.get(
    "/auditors",
    response_model=Page[AuditorRead],
    tags=[AUDITOR_TAG],
    summary="List certification personnel (认证人员)",
    responses=problem_responses(),
)
async def list_auditors(
    session: ReadSessionDep,
    _: PrincipalDep,
    page: PageDep,
    status: AuditorStatus | None = None,
    body_id: Annotated[IdQuery, Query(description="Auditors practising in this body now")] = None,
    q: NameSearch = None,
    registration_number: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[AuditorRead]:
    """Certification personnel (认证人员), by id, each with the body they practise in now."""
    filters = {
        "status": status,
        "body_id": body_id,
        "q": q,
        "registration_number": registration_number.strip().upper() if registration_number else None,
    }
    items, next_cursor = await service.list_auditors(session, filters, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/auditors/{auditor_id}",
    response_model=AuditorRead,
    tags=[AUDITOR_TAG],
    summary="Read one auditor",
    responses=problem_responses(404),
)
async def get_auditor(
    session: ReadSessionDep, _: PrincipalDep, auditor_id: IdPath, response: Response
) -> AuditorRead:
    """An auditor (认证人员) with the current affiliation; a revoked one with the day the bar ends."""
    auditor = await service.read_auditor(session, auditor_id)
    response.headers["ETag"] = etag(auditor.version)
    return auditor


@router.post(
    "/auditors",
    response_model=AuditorRead,
    status_code=201,
    tags=[AUDITOR_TAG],
    summary="Record certification personnel (认证人员)",
    responses=problem_responses(403, 404, 409),
)
async def create_auditor(
    session: SessionDep, audit: AuditDep, principal: RegistryWriter, data: AuditorCreate, response: Response
) -> AuditorRead:
    """Record an auditor (认证人员) by the registration number (注册号) the national registration
    body gave. A number already recorded is 409 `/problems/registration-number-taken`
    (`/problems/auditor-barred` while a revocation's bar runs)."""
    auditor = await service.create_auditor(session, audit, principal, data)
    await session.commit()
    response.headers["Location"] = f"{AUDITORS}/{auditor.id}"
    response.headers["ETag"] = etag(auditor.version)
    return auditor


@router.patch(
    "/auditors/{auditor_id}",
    response_model=AuditorRead,
    tags=[AUDITOR_TAG],
    summary="Change an auditor's record or registration status (If-Match required)",
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def update_auditor(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    auditor: AuditorToWrite,
    data: AuditorUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> AuditorRead:
    """Change an auditor's (认证人员) name, qualifications or status. Revoking (撤销) ends the
    current affiliation; registering a revoked auditor again within five years of the
    revocation is 409 `/problems/auditor-barred`."""
    changed = await service.update_auditor(session, audit, principal, auditor, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(changed.version)
    return changed


@router.get(
    "/auditors/{auditor_id}/affiliations",
    response_model=Page[AffiliationRead],
    tags=[AUDITOR_TAG],
    summary="An auditor's affiliations, past and current",
    responses=problem_responses(404),
)
async def list_auditor_affiliations(
    session: ReadSessionDep, _: PrincipalDep, auditor_id: IdPath, page: PageDep
) -> Page[AffiliationRead]:
    """The bodies an auditor (认证人员) practised in (执业机构), oldest first."""
    items, next_cursor = await service.list_affiliations(session, auditor_id, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/auditors/{auditor_id}/affiliations/{affiliation_id}",
    response_model=AffiliationRead,
    tags=[AUDITOR_TAG],
    summary="Read one affiliation of an auditor",
    responses=problem_responses(404),
)
async def get_auditor_affiliation(
    session: ReadSessionDep, _: PrincipalDep, auditor_id: IdPath, affiliation_id: IdPath
) -> AffiliationRead:
    """One period of an auditor (认证人员) practising in a body (执业机构)."""
    return await service.read_affiliation(session, auditor_id, affiliation_id)


@router.post(
    "/auditors/{auditor_id}/affiliations",
    response_model=AffiliationRead,
    status_code=201,
    tags=[AUDITOR_TAG],
    summary="An auditor starts practising in a certification body",
    responses=problem_responses(403, 404, 409),
)
async def create_auditor_affiliation(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    auditor: AuditorToWrite,
    data: AffiliationCreate,
    response: Response,
) -> AffiliationRead:
    """The auditor (认证人员) practises in one body at a time: while an affiliation is open a
    second is 409 `/problems/auditor-already-affiliated`. The ETag is the auditor's new
    version (the affiliation is part of the auditor's record)."""
    affiliation, version = await service.affiliate_auditor(session, audit, principal, auditor, data)
    await session.commit()
    response.headers["Location"] = f"{AUDITORS}/{affiliation.auditor_id}/affiliations/{affiliation.id}"
    response.headers["ETag"] = etag(version)
    return affiliation


@router.post(
    "/auditors/{auditor_id}/affiliations/{affiliation_id}/end",
    response_model=AffiliationRead,
    tags=[AUDITOR_TAG],
    summary="An auditor stops practising in a certification body",
    responses=problem_responses(403, 404, 409),
)
async def end_auditor_affiliation(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    auditor: AuditorToWrite,
    affiliation_id: IdPath,
    data: AffiliationEnd,
    response: Response,
) -> AffiliationRead:
    """End the auditor's (认证人员) practice in the body on `ended_on` (the last day); an ended
    affiliation is 409 `/problems/affiliation-ended`. The ETag is the auditor's new version."""
    affiliation, version = await service.end_affiliation(
        session, audit, principal, auditor, affiliation_id, data
    )
    await session.commit()
    response.headers["ETag"] = etag(version)
    return affiliation


# --- certification activities ---------------------------------------------------


@router.get(
    "/certification-activities",
    response_model=Page[ActivityRead],
    tags=[ACTIVITY_TAG],
    summary="List certification activities (认证活动)",
    responses=problem_responses(),
)
async def list_certification_activities(
    session: ReadSessionDep,
    _: PrincipalDep,
    page: PageDep,
    certificate_id: IdQuery = None,
    body_id: IdQuery = None,
    holder_id: IdQuery = None,
    kind: ActivityKind | None = None,
) -> Page[ActivityRead]:
    """Certification activities (认证活动) by id: application, audit, decision, surveillance,
    recertification — who, when, with what result."""
    filters = {"certificate_id": certificate_id, "body_id": body_id, "holder_id": holder_id, "kind": kind}
    items, next_cursor = await service.list_activities(session, filters, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/certification-activities/{activity_id}",
    response_model=ActivityRead,
    tags=[ACTIVITY_TAG],
    summary="Read one certification activity",
    responses=problem_responses(404),
)
async def get_certification_activity(
    session: ReadSessionDep, _: PrincipalDep, activity_id: IdPath, response: Response
) -> ActivityRead:
    """A certification activity (认证活动) as recorded; activities are never changed."""
    activity = await service.read_activity(session, activity_id)
    response.headers["ETag"] = etag(1)
    return activity


@router.post(
    "/certification-activities",
    response_model=ActivityRead,
    status_code=201,
    tags=[ACTIVITY_TAG],
    summary="Record a certification activity (认证活动)",
    responses=problem_responses(403, 404, 409),
)
async def create_certification_activity(
    session: SessionDep, audit: AuditDep, principal: RegistryWriter, data: ActivityCreate, response: Response
) -> ActivityRead:
    """Record a step of certification (认证活动) as it happened, append-only: each auditor
    named must have practised in the body that day (else 409
    `/problems/auditor-not-affiliated`). A surveillance (监督审核) moves its certificate's
    `last_surveillance_on` forward in the same transaction."""
    activity = await service.record_activity(session, audit, principal, data)
    await session.commit()
    response.headers["Location"] = f"{ACTIVITIES}/{activity.id}"
    response.headers["ETag"] = etag(1)
    return activity
