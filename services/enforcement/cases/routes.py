"""Lead and case HTTP API: thin handlers that parse, authorize, call the service, respond."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, Field

from services.common.auth import Role
from services.common.concurrency import etag
from services.common.dates import LegalDate
from services.common.deps import Authorize
from services.common.event_schemas import CaseChanged
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses
from services.common.responses import fast_page
from services.common.types import IdPath, IdQuery
from services.enforcement.cases import events, execution, hearings, service
from services.enforcement.cases import repository as repo
from services.enforcement.cases.models import CaseState, LeadSource, LeadState, Procedure
from services.enforcement.cases.schemas import (
    CaseRead,
    CaseSummary,
    CaseTransition,
    ChainRead,
    DeadlineRead,
    EvidenceCreate,
    EvidenceRead,
    HearingRead,
    HearingWrite,
    LeadCreate,
    LeadRead,
    LeadTransition,
    OfficersAssign,
    PaymentCreate,
    PaymentRead,
    PreservationDecision,
    SeizureExtension,
    SimpleCaseCreate,
    TimelineEntry,
)
from services.enforcement.deps import (
    AuditDep,
    CaseForUpdate,
    CaseToRead,
    DatabaseDep,
    IfMatchDep,
    LeadForUpdate,
    LeadToRead,
    LeadWriter,
    PrincipalDep,
    ReadSessionDep,
    RegistryDep,
    SessionDep,
)
from services.enforcement.registry import SubjectType

PREFIX = "/api/v1/enforcement"
router = APIRouter(prefix=PREFIX)
PageDep = Annotated[PageParams, Depends(page_params)]
OnTheSpot = Authorize(Role.ENFORCEMENT)


def _lead_headers(response: Response, lead) -> None:
    response.headers["ETag"] = etag(lead.version)


# --- leads -------------------------------------------------------------------


@router.get(
    "/leads",
    response_model=Page[LeadRead],
    tags=["leads"],
    summary="List the leads of the principal's subtree",
    description=(
        "Leads (案件线索) of the principal's bureau and the bureaus under it, oldest first. Filter by "
        "`state`, `source`, the subject (`subject_type` with `subject_id`), the handling `bureau_id`, "
        "and `overdue=true` for leads past their decide-to-open deadline."
    ),
    responses=problem_responses(),
)
async def list_leads(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: PageDep,
    state: LeadState | None = None,
    source: LeadSource | None = None,
    subject_type: SubjectType | None = None,
    subject_id: IdQuery = None,
    bureau_id: IdQuery = None,
    overdue: bool | None = None,
) -> Page[LeadRead]:
    filters = {
        "state": state,
        "source": source,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "bureau_id": bureau_id,
    }
    items, next_cursor = await service.list_leads(
        session, principal, filters, overdue, page.cursor, page.limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/leads",
    response_model=LeadRead,
    status_code=status.HTTP_201_CREATED,
    tags=["leads"],
    summary="Register a lead",
    description=(
        "Registers a lead (案件线索) from a complaint (投诉), a report (举报), a transfer from another "
        "authority (移送) or an assignment from above (交办); referrals of non-compliant inspections "
        "arrive by themselves from the registry. The subject is checked in the registry "
        "(422 `subject_not_found`). The decide-to-open deadline starts from `received_on`. "
        "Provincial systems send `Idempotency-Key`."
    ),
    responses=problem_responses(403, 404, 409),
)
async def create_lead(
    session: SessionDep,
    audit: AuditDep,
    registry: RegistryDep,
    principal: LeadWriter,
    data: LeadCreate,
    response: Response,
) -> LeadRead:
    lead = await service.register_lead(session, audit, registry, principal, data)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/leads/{lead.id}"
    _lead_headers(response, lead)
    return service.lead_read(lead)


@router.get(
    "/leads/{lead_id}",
    response_model=LeadRead,
    tags=["leads"],
    summary="Read one lead",
    description="One lead (案件线索) with its state, its decide-to-open deadline and its case, if opened.",
    responses=problem_responses(404),
)
async def get_lead(lead: LeadToRead, response: Response) -> LeadRead:
    _lead_headers(response, lead)
    return service.lead_read(lead)


@router.get(
    "/leads/{lead_id}/deadlines",
    response_model=list[DeadlineRead],
    tags=["leads"],
    summary="The lead's running deadlines, each explained",
    description="The decide-to-open deadline (立案期限) while the lead is verified, and how it was computed.",
    responses=problem_responses(404, 409),
)
async def get_lead_deadlines(session: ReadSessionDep, lead: LeadToRead) -> list[DeadlineRead]:
    return await service.lead_deadlines(session, lead)


@router.post(
    "/leads/{lead_id}/transitions",
    response_model=LeadRead,
    tags=["leads"],
    summary="Open a case from the lead, decline it, or extend its deadline (If-Match required)",
    description=(
        "The bureau head's approval (立案审批): `open_case` opens a case (with its title, party and "
        "officers), `decline_lead` declines with the reason (不予立案), `extend_lead_deadline` extends the "
        "decide-to-open deadline within the rule's limit. Each records the officer and the post it is "
        "taken under (`/problems/post-not-authorized` when the post's duties do not include it)."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def transition_lead(
    session: SessionDep,
    audit: AuditDep,
    registry: RegistryDep,
    principal: PrincipalDep,
    lead: LeadForUpdate,
    data: LeadTransition,
    response: Response,
    if_match: IfMatchDep = None,
) -> LeadRead:
    lead, case = await service.take_lead_step(session, audit, registry, principal, lead, data, if_match)
    await session.commit()
    _lead_headers(response, lead)
    if case is not None:
        response.headers["Location"] = f"{PREFIX}/cases/{case.id}"
    return service.lead_read(lead)


# --- cases -------------------------------------------------------------------


@router.get(
    "/cases",
    response_model=Page[CaseSummary],
    tags=["cases"],
    summary="List the cases of the principal's subtree",
    description=(
        "Cases (案件) of the principal's bureau and the bureaus under it, oldest first. Filters: `state`, "
        "`procedure`, `overdue=true` (a running deadline passed), `mine=true` (cases the calling officer "
        "is assigned to), the subject (`subject_type` with `subject_id`, any record the case concerns), "
        "`violation_code`, `major` (either flag), the handling `bureau_id`, and windows of opening and "
        "decision dates."
    ),
    responses=problem_responses(),
)
async def list_cases(
    db: DatabaseDep,
    principal: PrincipalDep,
    page: PageDep,
    state: CaseState | None = None,
    procedure: Procedure | None = None,
    overdue: bool | None = None,
    mine: bool | None = None,
    subject_type: SubjectType | None = None,
    subject_id: IdQuery = None,
    violation_code: Annotated[str | None, Query(max_length=64)] = None,
    major: bool | None = None,
    bureau_id: IdQuery = None,
    opened_from: LegalDate | None = None,
    opened_to: LegalDate | None = None,
    decided_from: LegalDate | None = None,
    decided_to: LegalDate | None = None,
) -> Response:
    filters = {
        "state": state,
        "procedure": procedure,
        "overdue": overdue,
        "mine": mine,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "violation_code": violation_code,
        "major": major,
        "bureau_id": bureau_id,
        "opened_from": opened_from,
        "opened_to": opened_to,
        "decided_from": decided_from,
        "decided_to": decided_to,
    }
    rows, next_cursor = await service.list_cases(db, principal, filters, page.cursor, page.limit)
    return fast_page(CaseSummary, rows, next_cursor)


@router.post(
    "/cases",
    response_model=CaseRead,
    status_code=status.HTTP_201_CREATED,
    tags=["cases"],
    summary="Record a case decided on the spot (simple procedure)",
    description=(
        "The simple procedure (简易程序): a warning, or a fine within the simple limits "
        "(`/problems/simple-procedure-limit`), decided on the spot by at least two officers. "
        "Ordinary cases are opened from a lead (`POST /leads/{id}/transitions`, `open_case`). "
        "Provincial systems send `Idempotency-Key`."
    ),
    responses=problem_responses(403, 404, 409),
)
async def create_case(
    session: SessionDep,
    audit: AuditDep,
    registry: RegistryDep,
    principal: OnTheSpot,
    data: SimpleCaseCreate,
    response: Response,
) -> CaseRead:
    case = await service.decide_on_the_spot(session, audit, registry, principal, data)
    await session.commit()  # at once: the audit chain's lock is held until then
    read = await service.case_read(session, case)
    response.headers["Location"] = f"{PREFIX}/cases/{case.id}"
    response.headers["ETag"] = etag(case.version)
    return read


@router.get(
    "/cases/{case_id}",
    response_model=CaseRead,
    tags=["cases"],
    summary="Read one case",
    description=(
        "One case (案件): its state, both major flags with their reasons, officers (承办人员), the registry "
        "subjects it concerns, the proposed and decided penalty items (initial and current amounts, "
        "and where each certificate action stands in the registry), and its earliest running deadline."
    ),
    responses=problem_responses(404),
)
async def get_case(session: ReadSessionDep, case: CaseToRead, response: Response) -> CaseRead:
    response.headers["ETag"] = etag(case.version)
    return await service.case_read(session, case)


@router.get(
    "/cases/{case_id}/timeline",
    response_model=list[TimelineEntry],
    tags=["cases"],
    summary="The case's history in order",
    description=(
        "Every step of the case and of the lead it came from, in order: who (account, officer and post), "
        "when, from and to which state, the reason and the legal basis (全过程记录)."
    ),
    responses=problem_responses(404),
)
async def get_timeline(session: ReadSessionDep, case: CaseToRead) -> list[TimelineEntry]:
    rows = await repo.timeline(session, case.id, case.lead_id)
    return [TimelineEntry.model_validate(r, from_attributes=True) for r in rows]


@router.get(
    "/cases/{case_id}/deadlines",
    response_model=list[DeadlineRead],
    tags=["cases"],
    summary="The case's running deadlines, each explained",
    description=(
        "The statutory time limits (办案期限) "
        "running in the case's state (decision, review, the party's answer window, service, "
        "payment, closing, publication), each with its rule, start, days counted, excluded intervals and "
        "the non-working days skipped. A deadline in a year the calendar does not cover is refused "
        "(`/problems/calendar-not-covered`) until an administrator loads that year."
    ),
    responses=problem_responses(404, 409),
)
async def get_case_deadlines(session: ReadSessionDep, case: CaseToRead) -> list[DeadlineRead]:
    return await service.case_deadlines(session, case)


@router.post(
    "/cases/{case_id}/transitions",
    response_model=CaseRead,
    tags=["cases"],
    summary="Take a step of the procedure (If-Match required)",
    description=(
        "One step of the administrative penalty procedure, named by `step`, with what it records. "
        "A step not allowed from the case's state is `/problems/invalid-transition` with the allowed "
        "ones; each step needs its role (`/problems/role-required`) and a post whose duties include it "
        "(`/problems/post-not-authorized`). Rules held: two officers with credentials before "
        "investigation (`/problems/too-few-officers`); a fine inside its article's range "
        "(`/problems/fine-outside-range`); the review's answer (`review_agree`, `review_correct`, "
        "`review_return`) is given in the legal-affairs body's queue at `/api/v1/statistics/reviews`, "
        "whose event takes the step — a person taking it here is `/problems/review-in-legal-affairs`; "
        "a major case decided only after the legal review "
        "agreed (`/problems/legal-review-required`) and collectively "
        "(`/problems/collective-decision-required`); the party's answer window "
        "(`/problems/answer-window-open`); hearings only where the thresholds allow "
        "(`/problems/hearing-not-allowed`); a hearing concluded once held and reported "
        "(`/problems/hearing-not-held`); closing only once executed (`/problems/execution-incomplete`) "
        "or once the execution passed to the court. A party that neither pays nor appeals is reminded "
        "(催告, `remind_payment`, after the payment deadline: `/problems/payment-not-due`); the head "
        "applies to the court (申请法院强制执行, `apply_court_enforcement`) after the reminder's period "
        "(`/problems/payment-not-reminded`, `/problems/reminder-period-running` with the date), once "
        "(`/problems/court-enforcement-applied`), while money is owed (`/problems/nothing-owed`)."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def transition_case(
    session: SessionDep,
    audit: AuditDep,
    registry: RegistryDep,
    principal: PrincipalDep,
    case: CaseForUpdate,
    data: CaseTransition,
    response: Response,
    if_match: IfMatchDep = None,
) -> CaseRead:
    case = await service.take_case_step(session, audit, registry, principal, case, data, if_match)
    await session.commit()  # at once: the audit chain's lock is held until then
    read = await service.case_read(session, case)
    response.headers["ETag"] = etag(case.version)
    return read


@router.put(
    "/cases/{case_id}/officers",
    response_model=CaseRead,
    tags=["cases"],
    summary="Assign or reassign the case's officers (If-Match required)",
    description=(
        "Names the case's officers (承办人员): each active, holding an enforcement credential (执法证) "
        "in the registry, of the case's bureau line. Officers left out are released, recorded with the "
        "reason; a case under investigation keeps at least two."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def assign_officers(
    session: SessionDep,
    audit: AuditDep,
    registry: RegistryDep,
    principal: PrincipalDep,
    case: CaseForUpdate,
    data: OfficersAssign,
    response: Response,
    if_match: IfMatchDep = None,
) -> CaseRead:
    case = await service.assign_officers(session, audit, registry, principal, case, data, if_match)
    await session.commit()  # at once: the audit chain's lock is held until then
    read = await service.case_read(session, case)
    response.headers["ETag"] = etag(case.version)
    return read


@router.get(
    "/cases/{case_id}/evidence",
    response_model=list[EvidenceRead],
    tags=["cases"],
    summary="The case's evidence register",
    description="The evidence register (证据登记), with the due date of each preservation or seizure.",
    responses=problem_responses(404, 409),
)
async def list_evidence(session: ReadSessionDep, case: CaseToRead) -> list[EvidenceRead]:
    rows = await repo.evidence(session, case.id)  # type: ignore[arg-type]
    return [
        EvidenceRead.model_validate(
            {**r.model_dump(), "measure_due": await service.evidence_due(session, case, r)}
        )
        for r in rows
    ]


@router.post(
    "/cases/{case_id}/evidence",
    response_model=EvidenceRead,
    status_code=status.HTTP_201_CREATED,
    tags=["cases"],
    summary="Register evidence",
    description=(
        "Registers one item of evidence of the eight types (证据种类), with an evidence preservation "
        "(先行登记保存) or a seizure (查封、扣押) and its period."
    ),
    responses=problem_responses(403, 404, 409),
)
async def add_evidence(
    session: SessionDep,
    audit: AuditDep,
    registry: RegistryDep,
    principal: PrincipalDep,
    case: CaseForUpdate,
    data: EvidenceCreate,
) -> EvidenceRead:
    row = await service.add_evidence(session, audit, registry, principal, case, data)
    due = await service.evidence_due(session, case, row)
    read = EvidenceRead.model_validate({**row.model_dump(), "measure_due": due})
    await session.commit()
    return read


@router.get(
    "/cases/{case_id}/payments",
    response_model=list[PaymentRead],
    tags=["cases"],
    summary="Payments towards the decision",
    description="Payments of the fine and of the late surcharge (加处罚款), instalments included.",
    responses=problem_responses(404),
)
async def list_payments(session: ReadSessionDep, case: CaseToRead) -> list[PaymentRead]:
    rows = await repo.payments(session, case.id)  # type: ignore[arg-type]
    return [PaymentRead.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/cases/{case_id}/payments",
    response_model=PaymentRead,
    status_code=status.HTTP_201_CREATED,
    tags=["cases"],
    summary="Record a payment",
    description=(
        "Records a payment (缴纳罚款) "
        "of the fine or of the late surcharge (加处罚款, 3 % of the fine a day after the payment "
        "deadline, capped at the fine); more than is owed is refused (`/problems/overpayment`)."
    ),
    responses=problem_responses(403, 404, 409),
)
async def record_payment(
    session: SessionDep,
    audit: AuditDep,
    registry: RegistryDep,
    principal: PrincipalDep,
    case: CaseForUpdate,
    data: PaymentCreate,
) -> PaymentRead:
    payment = await service.record_payment(session, audit, registry, principal, case, data)
    await session.commit()
    return PaymentRead.model_validate(payment, from_attributes=True)


@router.get(
    "/chain",
    response_model=ChainRead,
    tags=["cases"],
    summary="The enforcement chain of a registry record",
    description=(
        "Traceability (可追溯): the leads and cases, with their decisions, that concern a certificate, "
        "enterprise, product, certification body or auditor, within the caller's scope. The registry's "
        "dossiers show it."
    ),
    responses=problem_responses(),
)
async def get_chain(
    session: ReadSessionDep,
    principal: PrincipalDep,
    subject_type: SubjectType,
    subject_id: Annotated[int, Query(ge=1, le=2**53 - 1)],
) -> ChainRead:
    return ChainRead.model_validate(await service.chain_of(session, principal, subject_type, subject_id))


# --- the hearing's timetable (听证) ---------------------------------------------


@router.get(
    "/cases/{case_id}/hearing",
    response_model=HearingRead,
    tags=["cases"],
    summary="The case's hearing and its deadlines",
    description=(
        "The hearing (听证) asked by the party: its host (听证主持人), the files handed, the date fixed, "
        "the notice to the party and the public notice of a public hearing, the hearing held and its "
        "report (听证报告), with each deadline of the hearing rules: due date, met or not, and how it "
        "was computed. 404 for a case without a hearing."
    ),
    responses=problem_responses(404, 409),
)
async def get_hearing(session: ReadSessionDep, case: CaseToRead, response: Response) -> HearingRead:
    response.headers["ETag"] = etag(case.version)
    return await hearings.hearing_read(session, case)


@router.put(
    "/cases/{case_id}/hearing",
    response_model=HearingRead,
    tags=["cases"],
    summary="Record the hearing's timetable (If-Match on the case required)",
    description=(
        "Records the hearing (听证) whole, while the case is in the state `hearing` "
        "(`/problems/case-not-in-hearing`), by an officer of the case (`/problems/not-case-officer`) "
        "whose post lists `record_hearing`. Each date follows the ones before it (422 `date_order`, "
        "`missing_earlier_date`); the host is not one of the case's officers "
        "(`/problems/host-is-case-officer`); the notice to the party is served at least the rule's working "
        "days before the hearing (`/problems/hearing-notice-late`, with `latest_on`), the public notice of "
        "a public hearing likewise (`/problems/hearing-public-notice-late`). `conclude_hearing` waits for "
        "`held_on` and `report_on`. Each change is on the case's timeline (`record_hearing`)."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def put_hearing(
    session: SessionDep,
    audit: AuditDep,
    registry: RegistryDep,
    principal: PrincipalDep,
    case: CaseForUpdate,
    data: HearingWrite,
    response: Response,
    if_match: IfMatchDep = None,
) -> HearingRead:
    case = await hearings.record_hearing(session, audit, registry, principal, case, data, if_match)
    await session.commit()  # at once: the audit chain's lock is held until then
    response.headers["ETag"] = etag(case.version)
    return await hearings.hearing_read(session, case)


# --- measures on evidence --------------------------------------------------------------


async def _evidence_read(session, case, row) -> EvidenceRead:
    return EvidenceRead.model_validate(
        {**row.model_dump(), "measure_due": await service.evidence_due(session, case, row)}
    )


@router.post(
    "/cases/{case_id}/evidence/{evidence_id}/extension",
    response_model=EvidenceRead,
    tags=["cases"],
    summary="Extend a seizure once",
    description=(
        "Extends a seizure (查封、扣押) by the `seizure` rule's extension, once "
        "(`/problems/extension-exceeded` the second time), with the approval of the head of the "
        "enforcement body (post step `extend_seizure`), before the seizure ends "
        "(`/problems/seizure-ended`). The evidence read shows the new due date."
    ),
    responses=problem_responses(403, 404, 409),
)
async def extend_seizure(
    session: SessionDep,
    audit: AuditDep,
    registry: RegistryDep,
    principal: PrincipalDep,
    case: CaseForUpdate,
    evidence_id: IdPath,
    data: SeizureExtension,
) -> EvidenceRead:
    row = await execution.extend_seizure(session, audit, registry, principal, case, evidence_id, data)
    read = await _evidence_read(session, case, row)
    await session.commit()
    return read


@router.post(
    "/cases/{case_id}/evidence/{evidence_id}/decision",
    response_model=EvidenceRead,
    tags=["cases"],
    summary="Decide on preserved evidence",
    description=(
        "Decides on evidence under preservation (先行登记保存) within the "
        "`evidence_preservation_decision` rule's working days (`/problems/preservation-lapsed` after): "
        "tested, returned, transferred, seized (a seizure (查封、扣押) then runs from the decision), "
        "released or confiscated; by the head of the enforcement body (post step "
        "`decide_preservation`), once (`/problems/measure-decided`)."
    ),
    responses=problem_responses(403, 404, 409),
)
async def decide_preservation(
    session: SessionDep,
    audit: AuditDep,
    registry: RegistryDep,
    principal: PrincipalDep,
    case: CaseForUpdate,
    evidence_id: IdPath,
    data: PreservationDecision,
) -> EvidenceRead:
    row = await execution.decide_preservation(session, audit, registry, principal, case, evidence_id, data)
    read = await _evidence_read(session, case, row)
    await session.commit()
    return read


# --- the case facts statistics reconciles with ----------------------------------------------


class CaseFactRead(BaseModel):
    case_id: int
    version: int = Field(description="The case's version: the `aggregate_version` of its latest event")
    bureau_id: int
    bureau_path: str
    payload: CaseChanged = Field(
        description="Exactly the payload of `enforcement.case.changed` for this version"
    )


ServiceOnly = Authorize(Role.SERVICE)


@router.get(
    "/case-facts",
    response_model=Page[CaseFactRead],
    tags=["cases"],
    operation_id="list_case_facts",
    summary="Every case's current facts, as its latest event says them (services only)",
    description=(
        "For the statistics service's reconciliation (对账): each case (案件) with its version, bureau and "
        "the `enforcement.case.changed` payload of that version, built by the function that builds the "
        "event, in id order. Page with `after` (the last `case_id` read) and `limit` (at most 500). Only "
        "for platform services (403 `role-required` otherwise)."
    ),
    responses=problem_responses(403, 422),
)
async def list_case_facts(
    session: ReadSessionDep,
    principal: ServiceOnly,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="The last case id already read")] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="Cases per page, at most 500")] = 200,
) -> Page[CaseFactRead]:
    cases = await repo.cases_after(session, after, limit + 1)
    items = [
        CaseFactRead(
            case_id=case.id,  # type: ignore[arg-type]
            version=case.version,
            bureau_id=case.bureau_id,
            bureau_path=case.bureau_path,
            payload=await events.case_changed_payload(session, case),
        )
        for case in cases[:limit]
    ]
    # The cursor is the last id: `after` takes it as is.
    return Page(items=items, next_cursor=str(items[-1].case_id) if len(cases) > limit else None)
