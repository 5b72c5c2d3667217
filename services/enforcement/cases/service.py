"""The administrative penalty procedure (行政处罚程序): leads, cases and each step between.

Every step is looked up in the procedure's tables (``procedure.py``): from which
states, for which roles, recording what. On top of the roles, the enforcement
responsibility system (执法责任制) binds authority to posts: an officer takes a
step only if the registry lists it among the duties of the officer's post, and
every step records the officer and the post it was taken under. The rules of
DOMAIN.md that are numbers (deadlines, fine ranges, thresholds) are data read
from the calendar and catalogue packages, never literals here.

Functions here never commit: the route commits once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from importlib import import_module
from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal, PrincipalKind, Role
from services.common.concurrency import check_if_match
from services.common.dates import today
from services.common.db import Database, utcnow
from services.common.event_schemas import ReviewAnswered
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, Forbidden, NotFound, UnprocessableEntity
from services.enforcement.calendar.service import (
    Deadline,
    ExcludedPeriod,
    compute_deadline,
    current_rule_set,
    deadline_rule,
)
from services.enforcement.cases import events
from services.enforcement.cases import repository as repo
from services.enforcement.cases.models import (
    Case,
    CaseOfficer,
    CaseState,
    CaseSubject,
    DecisionKind,
    Evidence,
    ExcludedInterval,
    Lead,
    LeadState,
    Payment,
    PenaltyItem,
    Procedure,
    ProcedureStep,
    RegistryActionState,
    ReviewState,
)
from services.enforcement.cases.procedure import (
    CASE_OFFICER_STEPS,
    CASE_STEPS,
    LEAD_STEPS,
    REVIEW_STEPS,
    CaseStep,
    LeadStep,
)
from services.enforcement.cases.schemas import (
    CaseRead,
    CaseTransition,
    DeadlineRead,
    EvidenceCreate,
    LeadCreate,
    LeadRead,
    LeadTransition,
    OfficersAssign,
    PaymentCreate,
    PenaltyIn,
    SimpleCaseCreate,
)
from services.enforcement.catalogue.service import (
    PenaltyItem as CataloguePenalty,
)
from services.enforcement.catalogue.service import (
    PenaltyKind,
    bureau_level_of,
    check_fine,
    filing_check,
    get_violation,
    hearing_check,
    late_payment_surcharge,
    legal_review_check,
    province_of,
    simple_procedure_check,
)
from services.enforcement.registry import RegistryClient, SubjectType

# An enforcement case is handled by at least two officers holding credentials (DOMAIN.md).
MIN_CASE_OFFICERS = 2
DEFAULT_PREFIX = "执法罚字"
CERTIFICATE_ACTIONS = {PenaltyKind.SUSPEND_CERTIFICATE: "suspend", PenaltyKind.REVOKE_CERTIFICATE: "revoke"}
RESTORE = "restore"
SEIZURE_RULE = "seizure"
PRESERVATION_RULE = "evidence_preservation_decision"


# --- who takes a step ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Actor:
    """The principal taking a step, with the officer and post it is taken under."""

    principal: Principal
    officer_id: int | None = None
    officer_name: str | None = None
    post_id: int | None = None
    post_name: str | None = None


async def actor_for(registry: RegistryClient, principal: Principal, step: str) -> Actor:
    """The officer taking ``step``, if the duties of the officer's post include it (执法责任制).

    A platform service applying an event acts without a post; every person acts
    as an officer of the registry."""
    if principal.kind == PrincipalKind.SERVICE:
        return Actor(principal)
    if principal.officer_id is None:
        raise Forbidden(
            f"The step {step} is taken by an officer: this account is not one.", slug="officer-required"
        )
    standing = await registry.officer_standing(principal.officer_id, loc="token.officer_id")
    if not standing.active:
        raise Forbidden(f"Officer {principal.officer_id} is not active.", slug="officer-inactive")
    if standing.post is None or step not in standing.post.steps:
        post = f"post {standing.post.name}" if standing.post else "no post"
        raise Forbidden(
            f"Officer {standing.officer_id} holds {post}, whose duties do not include the step {step}.",
            slug="post-not-authorized",
            step=step,
            post_id=standing.post.id if standing.post else None,
        )
    return Actor(principal, standing.officer_id, standing.name, standing.post.id, standing.post.name)


def _step_date(given: date | None, *not_before: date | None) -> date:
    """The legal date of a step: given or today, never before the step it follows."""
    on = given or today()
    floor = max((d for d in not_before if d is not None), default=None)
    if floor is not None and on < floor:
        raise UnprocessableEntity(
            f"The step cannot be dated {on}: the step before it is dated {floor}.",
            errors=[
                {"loc": "body.occurred_on", "message": f"must not be before {floor}", "type": "date_order"}
            ],
        )
    return on


async def _record(
    session: AsyncSession,
    actor: Actor,
    step: str,
    on: date,
    *,
    lead: Lead | None = None,
    case: Case | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    legal_basis: str | None = None,
    details: dict[str, Any] | None = None,
) -> ProcedureStep:
    if case is not None:
        case.last_step_on = max(on, case.last_step_on or on)
    entry = ProcedureStep(
        lead_id=lead.id if lead else (case.lead_id if case else None),
        case_id=case.id if case else None,
        step=step,
        from_state=from_state,
        to_state=to_state,
        occurred_on=on,
        account_id=actor.principal.account_id,
        officer_id=actor.officer_id,
        officer_name=actor.officer_name,
        post_id=actor.post_id,
        post_name=actor.post_name,
        reason=reason,
        legal_basis=legal_basis,
        details=details or {},
    )
    return await repo.add(session, entry)


# --- deadlines ---------------------------------------------------------------


def _periods(rows: list[ExcludedInterval]) -> list[ExcludedPeriod]:
    return [ExcludedPeriod(kind=r.kind, start=r.starts_on, end=r.ends_on) for r in rows]


async def lead_deadlines(session: AsyncSession, lead: Lead) -> list[DeadlineRead]:
    if lead.state != LeadState.VERIFYING:
        return []
    excluded = _periods(await repo.intervals(session, lead_id=lead.id))
    deadline = await compute_deadline(
        session,
        "lead_decision",
        lead.received_on,
        extension_days=lead.extension_days,
        excluded=excluded,
        rule_set=lead.rule_set,
        as_of=_as_of(excluded),
    )
    return [_deadline_read(deadline)]


def _deadline_read(deadline: Any) -> DeadlineRead:
    paused = bool(deadline.paused)
    return DeadlineRead(
        rule=deadline.rule,
        due=deadline.due,
        paused=paused,
        overdue=not paused and deadline.due < today(),
        explanation=deadline.explain(),
    )


def _as_of(periods: list[ExcludedPeriod]) -> date:
    """A deadline paused by a running interval is counted up to the interval's start: its
    due date is then the one it would have had, and it cannot fall due while paused."""
    running = [p.start for p in periods if p.end is None]
    return min(running) if running else today()


async def _outstanding(session: AsyncSession, case: Case) -> tuple[Decimal, Decimal]:
    """(fine still owed, surcharge owed as of the last payment or today)."""
    paid = await repo.payments(session, case.id)  # type: ignore[arg-type]
    fine_paid = sum((p.amount for p in paid if p.kind == "fine"), Decimal("0"))
    surcharge_paid = sum((p.amount for p in paid if p.kind == "surcharge"), Decimal("0"))
    surcharge = Decimal("0")
    if case.served_on and case.fine_current > 0:
        due = (await compute_deadline(session, "payment", case.served_on, rule_set=case.rule_set)).due
        last_fine = max((p.paid_on for p in paid if p.kind == "fine"), default=None)
        settled_on = last_fine if fine_paid >= case.fine_current and last_fine else today()
        surcharge = await late_payment_surcharge(session, fine=case.fine_current, due=due, paid_on=settled_on)
    return max(case.fine_current - fine_paid, Decimal("0")), max(surcharge - surcharge_paid, Decimal("0"))


async def case_deadlines(session: AsyncSession, case: Case) -> list[DeadlineRead]:
    """The deadlines running for the case in its state, each explained (rule, start, days counted,
    exclusions, non-working days skipped)."""
    return [_deadline_read(d) for d in await running_deadlines(session, case)]


async def running_deadlines(session: AsyncSession, case: Case) -> list[Deadline]:
    """The deadlines running for the case in its state, as computed."""
    s = CaseState
    excluded = _periods(await repo.intervals(session, case_id=case.id))
    wanted: list[tuple[str, date, int, list[ExcludedPeriod]]] = []
    running = {
        s.OPENED,
        s.INVESTIGATING,
        s.SUSPENDED,
        s.INVESTIGATION_CLOSED,
        s.UNDER_REVIEW,
        s.REVIEWED,
        s.NOTIFIED,
        s.HEARING,
        s.HEARD,
    }
    if case.state in running:
        wanted.append(("decision", case.opened_on, case.decision_extension_days, excluded))
    if case.state == s.UNDER_REVIEW and case.review_requested_on:
        wanted.append(("review", case.review_requested_on, 0, []))
    if case.state == s.NOTIFIED and case.notice_served_on:
        wanted.append(("prior_notice_answer", case.notice_served_on, 0, []))
    if case.state == s.HEARING and case.hearing_requested_on:
        from services.enforcement.cases.hearings import next_deadline

        upcoming = await next_deadline(session, case)  # the hearing's own timetable
        if upcoming is not None:
            wanted.append((*upcoming, 0, []))
    if case.state == s.DECIDED and case.decided_on and case.procedure == Procedure.ORDINARY:
        wanted.append(("service_of_decision", case.decided_on, 0, []))
    if case.procedure == Procedure.SIMPLE and case.state in {s.DECIDED, s.SERVED, s.EXECUTING, s.CLOSED}:
        wanted.append(("simple_procedure_filing", case.decided_on or case.opened_on, 0, []))
    if case.state in {s.SERVED, s.EXECUTING} and case.served_on:
        owed_fine, owed_surcharge = await _outstanding(session, case)
        if case.court_enforcement_applied_on:  # the execution passed to the court
            wanted.append(("closing", case.court_enforcement_applied_on, 0, []))
        elif owed_fine > 0:
            wanted.append(("payment", case.served_on, 0, []))
        elif owed_surcharge == 0:
            wanted.append(("closing", case.execution_completed_on or case.served_on, 0, []))
        if case.payment_reminded_on and not case.court_enforcement_applied_on and owed_fine + owed_surcharge:
            wanted.append(("court_enforcement_reminder", case.payment_reminded_on, 0, []))
    if (
        case.procedure == Procedure.ORDINARY
        and case.decision_kind == DecisionKind.PENALTY
        and case.decided_on
        and case.published_on is None
        and case.state not in {s.TERMINATED, s.TRANSFERRED}
        and await _publishable(session, case)
    ):
        wanted.append(("publication", case.decided_on, 0, []))
    result = []
    for rule, start, extension, periods in wanted:
        deadline = await compute_deadline(
            session,
            rule,
            start,
            extension_days=extension,
            excluded=periods,
            rule_set=case.rule_set,
            as_of=_as_of(periods),
        )
        result.append(deadline)
    return result


async def _publishable(session: AsyncSession, case: Case) -> bool:
    """Ordinary-procedure decisions other than a warning alone are published (公示)."""
    decided = await repo.penalties(session, case.id, "decided")  # type: ignore[arg-type]
    return any(p.kind != PenaltyKind.WARNING for p in decided)


async def _refresh_lead_due(session: AsyncSession, lead: Lead) -> None:
    deadlines = await lead_deadlines(session, lead)
    lead.next_due = min((d.due for d in deadlines if not d.paused), default=None)


async def _refresh_case_due(session: AsyncSession, case: Case) -> None:
    deadlines = [d for d in await running_deadlines(session, case) if not d.paused]
    first = min(deadlines, key=lambda d: d.due, default=None)
    case.next_due = first.due if first else None
    case.next_due_rule = first.rule if first else None


# --- reads -------------------------------------------------------------------


def lead_read(lead: Lead) -> LeadRead:
    overdue = lead.next_due is not None and lead.next_due < today()
    return LeadRead.model_validate({**lead.model_dump(warnings=False), "overdue": overdue})


async def case_read(session: AsyncSession, case: Case) -> CaseRead:
    officers = await repo.all_officers(session, case.id)  # type: ignore[arg-type]
    subjects = await repo.subjects(session, case.id)  # type: ignore[arg-type]
    items = await repo.penalties(session, case.id)  # type: ignore[arg-type]
    overdue = case.next_due is not None and case.next_due < today()
    return CaseRead.model_validate(
        {
            **case.model_dump(warnings=False),
            "overdue": overdue,
            "officers": [o.model_dump(warnings=False) for o in officers],
            "subjects": [s.model_dump(warnings=False) for s in subjects],
            "penalties": [p.model_dump(warnings=False) for p in items],
        }
    )


async def read_lead(session: AsyncSession, principal: Principal, lead_id: int) -> Lead:
    lead = await repo.get_lead(session, lead_id)
    if lead is None or not principal.in_scope(lead.bureau_path):
        raise NotFound(f"Lead {lead_id} not found.")
    return lead


async def list_leads(
    session: AsyncSession,
    principal: Principal,
    filters: dict[str, Any],
    overdue: bool | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[LeadRead], str | None]:
    after = decode_cursor(cursor, int)
    rows = await repo.list_leads(
        session,
        within_path=principal.bureau_path,
        filters=filters,
        subject_id=filters.get("subject_id"),
        overdue_before=today() if overdue else None,
        after_id=after[0] if after else None,
        limit=limit + 1,
    )
    page, next_cursor = make_page(rows, limit, lambda r: [r.id])
    return [lead_read(r) for r in page], next_cursor


async def list_cases(
    db: Database, principal: Principal, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """Rows with CaseSummary's columns (``overdue`` as of today), for the driver path."""
    after = decode_cursor(cursor, int)
    if filters.pop("mine", None):
        if principal.officer_id is None:
            raise UnprocessableEntity(
                "mine=true lists the cases of the calling officer: this account is not an officer.",
                errors=[
                    {"loc": "query.mine", "message": "the caller is not an officer", "type": "not_an_officer"}
                ],
            )
        filters["officer_id"] = principal.officer_id
    if filters.get("subject_id") is not None and filters.get("subject_type") is None:
        raise UnprocessableEntity(
            "Name the subject_type of subject_id.",
            errors=[{"loc": "query.subject_type", "message": "required with subject_id", "type": "missing"}],
        )
    now = today()
    rows = await repo.list_cases(
        db,
        {
            **filters,
            "path": principal.bureau_path,
            "today": now,
            "overdue_before": now if filters.pop("overdue", None) else None,
            "after_id": after[0] if after else None,
            "limit": limit + 1,
        },
    )
    return make_page(rows, limit, lambda r: [r["id"]])


# --- leads -------------------------------------------------------------------


async def _handling_bureau(
    registry: RegistryClient, principal: Principal, bureau_id: int | None
) -> tuple[int, str]:
    """The bureau that handles a new lead or case: the caller's, or one of its subtree named by
    ``bureau_id`` (missing or outside the subtree alike: 404)."""
    if bureau_id is None or bureau_id == principal.bureau_id:
        return principal.bureau_id, principal.bureau_path
    bureau = await registry.bureau(bureau_id)
    if not principal.in_scope(bureau.path):
        raise NotFound(f"Bureau {bureau_id} not found.")
    return bureau_id, bureau.path


async def register_lead(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    data: LeadCreate,
) -> Lead:
    bureau_id, path = await _handling_bureau(registry, principal, data.bureau_id)
    subject = await registry.subject(data.subject_type, data.subject_id, loc="body.subject_id")
    lead = Lead(
        bureau_id=bureau_id,
        bureau_path=path,
        source=data.source,
        source_ref=data.source_ref,
        subject_type=data.subject_type,
        subject_id=data.subject_id,
        subject_name=subject.name,
        summary=data.summary,
        received_on=data.received_on,
        rule_set=await current_rule_set(session),
        recorded_by=principal.account_id,
    )
    await repo.add(session, lead)
    await _refresh_lead_due(session, lead)
    await _record(
        session,
        Actor(principal, principal.officer_id),
        "register_lead",
        data.received_on,
        lead=lead,
        to_state=lead.state,
        details={"source": data.source, "source_ref": data.source_ref},
    )
    await audit.record(session, principal, "lead.registered", "lead", lead.id, data.model_dump(mode="json"))
    await events.lead_changed(session, lead)
    return lead


async def lead_from_referral(
    session: AsyncSession, audit: AuditLog, principal: Principal, referral: Any, bureau_path: str
) -> Lead:
    """A non-compliant inspection referred by the registry becomes a lead (闭环), once."""
    existing = await repo.lead_by_inspection(session, referral.inspection_id)
    if existing is not None:
        return existing
    lead = Lead(
        bureau_id=referral.bureau_id,
        bureau_path=bureau_path,
        source="inspection_referral",
        source_ref=f"inspection {referral.inspection_id}",
        inspection_id=referral.inspection_id,
        subject_type=referral.target_type,
        subject_id=referral.target_id,
        subject_name=referral.target_name,
        summary=referral.findings,
        received_on=referral.inspected_on,
        rule_set=await current_rule_set(session),
        recorded_by=principal.account_id,
    )
    await repo.add(session, lead)
    await _refresh_lead_due(session, lead)
    await _record(
        session,
        Actor(principal),
        "register_lead",
        referral.inspected_on,
        lead=lead,
        to_state=lead.state,
        details={"source": "inspection_referral", "inspection_id": referral.inspection_id},
    )
    await audit.record(
        session,
        principal,
        "lead.registered",
        "lead",
        lead.id,
        {"inspection_id": referral.inspection_id, "source": "inspection_referral"},
    )
    await events.lead_changed(session, lead)
    return lead


async def take_lead_step(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    lead: Lead,
    data: LeadTransition,
    if_match: str | None,
) -> tuple[Lead, Case | None]:
    check_if_match(if_match, lead.version)
    transition = LEAD_STEPS.resolve(lead.state, data.step, principal)
    LEAD_STEPS.check_records(transition, data.model_dump())
    actor = await actor_for(registry, principal, data.step)
    on = _step_date(data.occurred_on, lead.received_on)
    case = None
    before = lead.state
    if data.step == LeadStep.EXTEND:
        if data.extension_days is None:
            raise _missing("extension_days", data.step)
        rule = await _rule(session, "lead_decision", lead.rule_set)
        if lead.extension_days + data.extension_days > (rule.extension_days or 0):
            raise Conflict(
                f"The decide-to-open deadline extends by at most {rule.extension_days} days in all.",
                slug="extension-exceeded",
                allowed_days=rule.extension_days,
            )
        lead.extension_days += data.extension_days
    elif data.step == LeadStep.DECLINE:
        lead.decline_reason = data.reason
        lead.decided_on = on
    else:
        if data.case is None:
            raise _missing("case", data.step)
        case = await _open_case(session, audit, registry, principal, actor, lead, data, on)
        lead.case_id = case.id
        lead.decided_on = on
    lead.state = transition.target if transition.target is not None else lead.state
    lead.version += 1
    lead.updated_at = utcnow()
    await _refresh_lead_due(session, lead)
    await _record(
        session,
        actor,
        data.step,
        on,
        lead=lead,
        case=case,  # opening: one entry of both timelines, naming the case's number
        from_state=before,
        to_state=lead.state,
        reason=data.reason,
        legal_basis=data.legal_basis,
        details=({"extension_days": data.extension_days} if data.extension_days else {})
        | ({"number": case.number, "case_state": case.state} if case else {}),
    )
    await audit.record(session, principal, f"lead.{data.step}", "lead", lead.id, data.model_dump(mode="json"))
    await events.lead_changed(session, lead)
    return lead, case


def _missing(field: str, step: str) -> UnprocessableEntity:
    return UnprocessableEntity(
        f"The step {step} records {field}.",
        errors=[{"loc": f"body.{field}", "message": f"required for the step {step}", "type": "missing"}],
    )


async def _rule(session: AsyncSession, code: str, rule_set: str) -> Any:
    return await deadline_rule(session, code, rule_set)


async def _case_number(session: AsyncSession, bureau_id: int, on: date) -> str:
    prefix, serial = await repo.next_case_number(session, bureau_id, on.year)
    return f"{prefix or DEFAULT_PREFIX}〔{on.year}〕{serial}号"


async def _open_case(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    actor: Actor,
    lead: Lead,
    data: LeadTransition,
    on: date,
) -> Case:
    opening = data.case
    assert opening is not None
    case = Case(
        number=await _case_number(session, lead.bureau_id, on),
        bureau_id=lead.bureau_id,
        bureau_path=lead.bureau_path,
        lead_id=lead.id,
        title=opening.title,
        party_name=opening.party_name,
        party_kind=opening.party_kind,
        subject_type=lead.subject_type,
        subject_id=lead.subject_id,
        rule_set=lead.rule_set,
        opened_on=on,
        created_by=principal.account_id,
        circumstances=["assigned_or_supervised_from_above"] if lead.source == "assigned_from_above" else [],
    )
    await repo.add(session, case)
    number = None
    if lead.subject_type == SubjectType.CERTIFICATE:
        # Its number is kept with the case, so that a decision acting on the certificate
        # later does not need the registry (which may be down then: the action waits in
        # the outbox, the decision does not).
        found = await registry.subject(SubjectType.CERTIFICATE, lead.subject_id, loc="lead.subject_id")
        number = found.number
    await repo.add(
        session,
        CaseSubject(
            case_id=case.id,
            subject_type=lead.subject_type,
            subject_id=lead.subject_id,
            name=lead.subject_name,
            number=number,
        ),
    )
    for index, certificate_id in enumerate(dict.fromkeys(opening.certificate_ids)):
        if lead.subject_type == SubjectType.CERTIFICATE and certificate_id == lead.subject_id:
            continue
        found = await registry.subject(
            SubjectType.CERTIFICATE, certificate_id, loc=f"body.case.certificate_ids.{index}"
        )
        await repo.add(
            session,
            CaseSubject(
                case_id=case.id,
                subject_type=SubjectType.CERTIFICATE,
                subject_id=certificate_id,
                name=found.name,
                number=found.number,
            ),
        )
    if opening.officer_ids:
        await _assign(
            session,
            registry,
            principal,
            case,
            opening.officer_ids,
            on,
            reason="assigned at opening",
            loc="body.case.officer_ids",
        )
    await _refresh_case_due(session, case)
    await audit.record(
        session,
        principal,
        "case.opened",
        "case",
        case.id,
        {"lead_id": lead.id, "number": case.number, **opening.model_dump(mode="json")},
    )
    await events.case_changed(session, case)
    return case


# --- officers of a case --------------------------------------------------------


async def _assign(
    session: AsyncSession,
    registry: RegistryClient,
    principal: Principal,
    case: Case,
    officer_ids: list[int],
    on: date,
    *,
    reason: str,
    loc: str,
) -> list[CaseOfficer]:
    """Make ``officer_ids`` the case's current officers: each active, an enforcement officer
    holding a credential (执法证) in the case's bureau line; the others released (recorded)."""
    wanted = list(dict.fromkeys(officer_ids))
    standings = {}
    for index, officer_id in enumerate(wanted):
        standing = await registry.officer_standing(officer_id, loc=f"{loc}.{index}")
        if not (
            principal.in_scope(standing.bureau_path)
            or standing.bureau_path.startswith(principal.bureau_path)
            or case.bureau_path.startswith(standing.bureau_path)
        ):
            raise UnprocessableEntity(
                f"No officer {officer_id} in scope.",
                errors=[
                    {
                        "loc": f"{loc}.{index}",
                        "message": f"No officer {officer_id}",
                        "type": "officer_not_found",
                    }
                ],
            )
        if not standing.active:
            raise Conflict(
                f"Officer {officer_id} is not active.", slug="officer-inactive", officer_id=officer_id
            )
        if not standing.holds_credential:
            raise Conflict(
                f"Officer {officer_id} holds no enforcement credential (执法证).",
                slug="officer-without-credential",
                officer_id=officer_id,
            )
        if not (
            standing.bureau_path.startswith(case.bureau_path)
            or case.bureau_path.startswith(standing.bureau_path)
        ):
            raise Conflict(
                f"Officer {officer_id} is of neither the case's bureau, a bureau under it, nor one above it.",
                slug="officer-outside-bureau",
                officer_id=officer_id,
            )
        standings[officer_id] = standing
    current = {o.officer_id: o for o in await repo.current_officers(session, case.id)}  # type: ignore[arg-type]
    for officer_id, row in current.items():
        if officer_id not in standings:
            row.released_on = on
            row.release_reason = reason
    added = []
    for officer_id, standing in standings.items():
        if officer_id in current:
            continue
        added.append(
            await repo.add(
                session,
                CaseOfficer(
                    case_id=case.id,
                    officer_id=officer_id,
                    name=standing.name,
                    credential_number=standing.credential_number or "",
                    post_id=standing.post.id if standing.post else None,
                    assigned_on=on,
                    assigned_by=principal.account_id,
                ),
            )
        )
    await session.flush()
    return added


async def assign_officers(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    case: Case,
    data: OfficersAssign,
    if_match: str | None,
) -> Case:
    check_if_match(if_match, case.version)
    if case.state not in {
        CaseState.OPENED,
        CaseState.INVESTIGATING,
        CaseState.SUSPENDED,
        CaseState.INVESTIGATION_CLOSED,
        CaseState.REVIEWED,
        CaseState.NOTIFIED,
        CaseState.HEARING,
        CaseState.HEARD,
        CaseState.DECIDED,
        CaseState.SERVED,
        CaseState.EXECUTING,
    }:
        raise Conflict(
            f"A {case.state} case takes no new officers.", slug="case-not-running", state=case.state
        )
    if not principal.has_role(Role.HEAD, Role.ENFORCEMENT):
        raise Forbidden(
            "Assigning a case's officers needs the head or enforcement role.", slug="role-required"
        )
    actor = await actor_for(registry, principal, CaseStep.ASSIGN_OFFICERS)
    on = _step_date(data.occurred_on, case.opened_on)
    before = [o.officer_id for o in await repo.current_officers(session, case.id)]  # type: ignore[arg-type]
    await _assign(
        session, registry, principal, case, data.officer_ids, on, reason=data.reason, loc="body.officer_ids"
    )
    after = [o.officer_id for o in await repo.current_officers(session, case.id)]  # type: ignore[arg-type]
    if case.state != CaseState.OPENED and len(after) < MIN_CASE_OFFICERS:
        raise Conflict(
            f"A case under investigation keeps at least {MIN_CASE_OFFICERS} officers; {len(after)} named.",
            slug="too-few-officers",
        )
    _bump(case)
    await _record(
        session,
        actor,
        CaseStep.ASSIGN_OFFICERS,
        on,
        case=case,
        from_state=case.state,
        to_state=case.state,
        reason=data.reason,
        details={"before": before, "after": after},
    )
    await audit.record(
        session,
        principal,
        "case.officers_assigned",
        "case",
        case.id,
        {"before": before, "after": after, "reason": data.reason},
    )
    await events.case_changed(session, case)
    return case


def _bump(case: Case) -> None:
    case.version += 1
    case.updated_at = utcnow()


# --- steps of a case -----------------------------------------------------------


async def _check_penalties(
    session: AsyncSession,
    registry: RegistryClient,
    case: Case,
    penalties: list[PenaltyIn],
    violation: Any,
    goods_value: Decimal | None,
) -> list[dict[str, Any]]:
    """Each sanction well-formed, a fine inside its article's range, certificates known (those the
    case concerns already, without asking the registry again)."""
    concerned = await repo.subjects(session, case.id)  # type: ignore[arg-type]
    known = {s.subject_id: s.number for s in concerned if s.subject_type == SubjectType.CERTIFICATE}
    items = []
    for index, item in enumerate(penalties):
        loc = f"body.penalties.{index}"
        needs_amount = item.kind in {PenaltyKind.FINE, PenaltyKind.CONFISCATION}
        if needs_amount and item.amount is None:
            raise UnprocessableEntity(
                f"A {item.kind} names its amount.",
                errors=[{"loc": f"{loc}.amount", "message": "required", "type": "missing"}],
            )
        if not needs_amount and item.amount is not None:
            raise UnprocessableEntity(
                f"A {item.kind} has no amount.",
                errors=[{"loc": f"{loc}.amount", "message": "not allowed", "type": "extra"}],
            )
        if item.kind == PenaltyKind.FINE:
            check_fine(violation, item.amount, goods_value=goods_value, loc=f"{loc}.amount")  # type: ignore[arg-type]
        number = None
        if item.kind in CERTIFICATE_ACTIONS:
            if item.certificate_id is None:
                raise UnprocessableEntity(
                    f"A {item.kind} names the certificate.",
                    errors=[{"loc": f"{loc}.certificate_id", "message": "required", "type": "missing"}],
                )
            number = known.get(item.certificate_id)
            if number is None and registry is None:
                # An event's answer cannot ask the registry: it names the case's own certificates.
                raise Conflict(
                    f"Certificate {item.certificate_id} is not one the case concerns.",
                    slug="certificate-not-concerned",
                )
            if number is None:
                found = await registry.subject(
                    SubjectType.CERTIFICATE, item.certificate_id, loc=f"{loc}.certificate_id"
                )
                number = found.number
        elif item.certificate_id is not None:
            raise UnprocessableEntity(
                f"A {item.kind} names no certificate.",
                errors=[{"loc": f"{loc}.certificate_id", "message": "not allowed", "type": "extra"}],
            )
        items.append(
            {
                "kind": item.kind,
                "amount": item.amount,
                "certificate_id": item.certificate_id,
                "certificate_number": number,
            }
        )
    return items


async def _store_penalties(
    session: AsyncSession, case: Case, stage: str, items: list[dict[str, Any]]
) -> list[PenaltyItem]:
    await repo.drop_penalties(session, case.id, stage)  # type: ignore[arg-type]
    stored = []
    for item in items:
        stored.append(
            await repo.add(
                session,
                PenaltyItem(
                    case_id=case.id,
                    stage=stage,
                    kind=item["kind"],
                    amount_initial=item["amount"],
                    amount_current=item["amount"],
                    certificate_id=item["certificate_id"],
                    certificate_number=item["certificate_number"],
                ),
            )
        )
        if item["certificate_id"] is not None:
            await _concern(
                session, case, SubjectType.CERTIFICATE, item["certificate_id"], item["certificate_number"]
            )
    return stored


async def _concern(
    session: AsyncSession, case: Case, subject_type: str, subject_id: int, number: str | None
) -> None:
    from sqlalchemy import text

    conn = await session.connection()
    await conn.execute(
        text(
            "INSERT INTO case_subject (case_id, subject_type, subject_id, name, number) "
            "VALUES (:c, :t, :i, :n, :num) ON CONFLICT DO NOTHING"
        ),
        {
            "c": case.id,
            "t": subject_type,
            "i": subject_id,
            "n": number or f"{subject_type} {subject_id}",
            "num": number,
        },
    )


def _catalogue_items(items: list[dict[str, Any]]) -> list[CataloguePenalty]:
    return [CataloguePenalty(kind=PenaltyKind(i["kind"]), amount=i["amount"]) for i in items]


async def _flags(session: AsyncSession, case: Case, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Both meanings of "major" (DOMAIN.md), and whether a hearing may be asked, for ``items``."""
    kwargs = {
        "province_bureau_id": province_of(case.bureau_path),
        "party_kind": case.party_kind,
        "items": _catalogue_items(items),
    }
    level = bureau_level_of(case.bureau_path)
    review = await legal_review_check(
        session, bureau_level=level, categories=set(case.legal_review_categories), **kwargs
    )
    filing = await filing_check(session, bureau_level=level, circumstances=set(case.circumstances), **kwargs)
    hearing = await hearing_check(session, **kwargs)
    case.needs_legal_review = review.required
    case.needs_filing = filing.required
    case.flag_reasons = {
        "legal_review": review.reasons,
        "filing": filing.reasons,
        "hearing_allowed": hearing.required,
        "hearing": hearing.reasons,
    }
    return case.flag_reasons


async def take_case_step(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    case: Case,
    data: CaseTransition,
    if_match: str | None,
    *,
    answered_by: Actor | None = None,
) -> Case:
    """``answered_by``: for a review step the legal-affairs service takes, the reviewer (officer
    and post) whose answer it carries, recorded as who took the step."""
    if data.step in REVIEW_STEPS and principal.kind != PrincipalKind.SERVICE:
        # The review's answer is given in the legal-affairs body's queue; its event takes the step.
        raise Conflict(
            f"The step {data.step} is the legal-affairs body's answer to the review: give it at "
            f"/api/v1/statistics/reviews (POST /reviews/{{id}}/opinion), which takes the step.",
            slug="review-in-legal-affairs",
            reviews="/api/v1/statistics/reviews",
        )
    check_if_match(if_match, case.version)
    transition = CASE_STEPS.resolve(case.state, data.step, principal)
    CASE_STEPS.check_records(transition, data.model_dump())
    if answered_by is not None and principal.kind == PrincipalKind.SERVICE:
        actor = answered_by
    else:
        actor = await actor_for(registry, principal, data.step)
    officers = await repo.all_officers(session, case.id)  # type: ignore[arg-type]
    current_ids = {o.officer_id for o in officers if o.released_on is None}
    if (
        data.step in CASE_OFFICER_STEPS
        and actor.officer_id is not None
        and actor.officer_id not in current_ids
    ):
        raise Forbidden(f"The step {data.step} is taken by an officer of the case.", slug="not-case-officer")
    if data.step in REVIEW_STEPS and actor.officer_id in {o.officer_id for o in officers}:
        raise Forbidden("An officer of the case never reviews it.", slug="reviewer-is-case-officer")
    on = _step_date(data.occurred_on, case.opened_on, case.last_step_on)
    before = case.state
    details: dict[str, Any] = {}
    handler = _CASE_HANDLERS.get(data.step)
    if handler is not None:
        details = await handler(session, registry, case, data, on, current_ids) or {}
    if transition.target is not None:
        case.state = transition.target
    _bump(case)
    await _refresh_case_due(session, case)
    await _record(
        session,
        actor,
        data.step,
        on,
        case=case,
        from_state=before,
        to_state=case.state,
        reason=data.reason,
        legal_basis=data.legal_basis,
        details=details,
    )
    await events.case_changed(session, case, officers=[o for o in officers if o.released_on is None])
    if data.step == CaseStep.REQUEST_REVIEW:  # legal review and case review: both in the queue
        await events.review_requested(session, case, on)
    if data.step == CaseStep.DECIDE:
        await _send_certificate_actions(session, case, on)
    # Last: the audit chain's lock is held from here to the commit, which follows at once.
    await audit.record(session, principal, f"case.{data.step}", "case", case.id, data.model_dump(mode="json"))
    return case


async def _start_investigation(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    if len(officer_ids) < MIN_CASE_OFFICERS:
        raise Conflict(
            f"An investigation needs at least {MIN_CASE_OFFICERS} officers holding enforcement credentials; "
            f"{len(officer_ids)} assigned.",
            slug="too-few-officers",
        )
    return {"officer_ids": sorted(officer_ids)}


async def _suspend(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    kind = data.suspension_kind or "investigation_suspended"
    # An interval of the same kind ended yesterday or later runs on: one exclusion, not two.
    for interval in await repo.intervals(session, case_id=case.id):
        if (
            interval.kind == kind
            and interval.ends_on is not None
            and interval.ends_on >= on - timedelta(days=1)
        ):
            interval.ends_on = None
            return {"excluded": kind, "continues_from": interval.starts_on.isoformat()}
    await repo.add(session, ExcludedInterval(case_id=case.id, kind=kind, starts_on=on, note=data.reason))
    return {"excluded": kind}


async def _close_open_intervals(session, case: Case, on: date, *kinds: str) -> list[str]:
    closed = []
    for interval in await repo.intervals(session, case_id=case.id):
        if interval.ends_on is None and interval.kind in kinds:
            # The day it ends is the day the clock runs again: the interval covers the days before.
            interval.ends_on = max(interval.starts_on, on - timedelta(days=1))
            closed.append(interval.kind)
    return closed


async def _resume(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    return {"resumed": await _close_open_intervals(session, case, on, "investigation_suspended", "testing")}


async def _terminate(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    await _close_open_intervals(session, case, on, "investigation_suspended", "testing", "hearing")
    case.closed_on = on
    return {}


async def _transfer(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    await _close_open_intervals(session, case, on, "investigation_suspended", "testing", "hearing")
    case.transferred_to = data.transferred_to
    if data.transferred_to and any(w in data.transferred_to for w in ("公安", "检察", "judicial", "police")):
        case.circumstances = sorted({*case.circumstances, "transferred_to_judicial_organ"})
    case.closed_on = on
    return {"transferred_to": data.transferred_to}


async def _propose(session, registry, case: Case, data: CaseTransition) -> dict[str, Any]:
    violation = await get_violation(
        session,
        data.violation_code or case.violation_code or "",
        data.violation_regulation or case.violation_regulation,
    )
    case.violation_code = violation.code
    case.violation_regulation = violation.regulation
    if data.goods_value is not None:
        case.goods_value = data.goods_value
    if data.legal_review_categories is not None:
        case.legal_review_categories = sorted(set(data.legal_review_categories))
    if data.circumstances is not None:
        case.circumstances = sorted(set(data.circumstances))
    items = await _check_penalties(session, registry, case, data.penalties or [], violation, case.goods_value)
    if not items:
        raise UnprocessableEntity(
            "A proposal names at least one sanction.",
            errors=[{"loc": "body.penalties", "message": "at least one", "type": "too_short"}],
        )
    await _store_penalties(session, case, "proposed", items)
    return await _flags(session, case, items)


async def _close_investigation(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    case.facts = data.facts
    case.legal_basis = data.legal_basis
    flags = await _propose(session, registry, case, data)
    return {"flags": flags}


async def _request_review(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    case.review_kind = "legal" if case.needs_legal_review else "case"
    case.review_state = ReviewState.REQUESTED
    case.review_requested_on = on
    return {"review_kind": case.review_kind}


async def _review_agree(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    case.review_state = ReviewState.AGREED
    case.review_opinion = data.reason
    return {"outcome": "agree", "review_kind": case.review_kind}


async def _review_correct(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    flags = await _propose(session, registry, case, data)
    case.review_state = ReviewState.CORRECTED
    case.review_opinion = data.reason
    return {"outcome": "correct", "review_kind": case.review_kind, "flags": flags}


async def _review_return(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    case.review_state = ReviewState.RETURNED
    case.review_opinion = data.reason
    return {"outcome": "investigate_further", "review_kind": case.review_kind}


async def _notify(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    case.notice_served_on = on
    return {"hearing_allowed": case.flag_reasons.get("hearing_allowed", False)}


async def _answer_window(session, case: Case) -> date:
    assert case.notice_served_on is not None
    return (
        await compute_deadline(session, "prior_notice_answer", case.notice_served_on, rule_set=case.rule_set)
    ).due


async def _request_hearing(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    if not case.flag_reasons.get("hearing_allowed"):
        raise Conflict(
            "The proposed penalty does not reach the hearing thresholds: no hearing can be asked.",
            slug="hearing-not-allowed",
        )
    due = await _answer_window(session, case)
    if on > due:
        raise Conflict(
            f"A hearing is asked within the answer window, which ended on {due}.",
            slug="hearing-request-late",
            window_ended_on=due.isoformat(),
        )
    case.hearing_requested_on = on
    await repo.add(session, ExcludedInterval(case_id=case.id, kind="hearing", starts_on=on, note=data.reason))
    return {"window_ends_on": due.isoformat()}


async def _conclude_hearing(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    from services.enforcement.cases.hearings import require_held

    record = await require_held(session, case)
    case.hearing_held_on = record.held_on
    await _close_open_intervals(session, case, on, "hearing")
    return {"held_on": str(record.held_on), "report_on": str(record.report_on)}


async def _extend_decision(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    rule = await _rule(session, "decision", case.rule_set)
    total = case.decision_extension_days + (data.extension_days or 0)
    if total > (rule.extension_days or 0) and not data.collective_decision:
        raise Conflict(
            f"The decision deadline extends by {rule.extension_days} days with the head's approval; "
            "beyond that only by a collective decision (collective_decision: true) with a set period.",
            slug="extension-exceeded",
            allowed_days=rule.extension_days,
        )
    case.decision_extension_days = total
    return {"extension_days": data.extension_days, "total_extension_days": total}


async def _gate_decision(session, case: Case, data: CaseTransition, on: date) -> None:
    """A decision waits for the party's answer window (or its waiver), for the legal review of a
    major case, and is then taken collectively."""
    if case.state == CaseState.NOTIFIED and not (data.statement_waived or case.statement_waived):
        due = await _answer_window(session, case)
        if on <= due:
            raise Conflict(
                f"The party may state, defend or ask for a hearing until {due}; decide after it, "
                "or record that the party waived it (statement_waived).",
                slug="answer-window-open",
                window_ends_on=due.isoformat(),
            )
    if data.statement_waived:
        case.statement_waived = True
    if case.needs_legal_review:
        if case.review_kind != "legal" or case.review_state not in {
            ReviewState.AGREED,
            ReviewState.CORRECTED,
        }:
            raise Conflict(
                "A major case is decided only after the legal-affairs body's legal review (法制审核) agreed.",
                slug="legal-review-required",
                review_state=case.review_state,
            )
        if not data.collective_decision:
            raise Conflict(
                "A major case is decided collectively by the bureau's heads (集体讨论): "
                "record collective_decision: true.",
                slug="collective-decision-required",
            )
    case.collective_decision = bool(data.collective_decision)


async def _decide(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    violation = await get_violation(session, case.violation_code or "", case.violation_regulation)
    items = await _check_penalties(session, registry, case, data.penalties or [], violation, case.goods_value)
    if not items:
        raise UnprocessableEntity(
            "A penalty decision names at least one sanction.",
            errors=[{"loc": "body.penalties", "message": "at least one", "type": "too_short"}],
        )
    flags = await _flags(session, case, items)
    await _gate_decision(session, case, data, on)
    await _store_penalties(session, case, "decided", items)
    fine = sum((i["amount"] for i in items if i["kind"] == PenaltyKind.FINE), Decimal("0"))
    case.fine_decided = fine
    case.fine_current = fine
    case.decision_kind = DecisionKind.PENALTY
    case.decided_on = on
    case.legal_basis = data.legal_basis
    return {"flags": flags, "fine": str(fine)}


async def _decide_no_penalty(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    if case.state in {CaseState.NOTIFIED, CaseState.HEARD}:
        await _gate_decision(session, case, data, on)
    case.decision_kind = DecisionKind.NO_PENALTY
    case.decided_on = on
    case.needs_filing = False
    return {}


async def _serve(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    case.service_method = data.service_method
    if data.service_method == "public_notice":
        # Public notice counts as served once its period has passed (公告送达).
        days = await _rule(session, "service_of_decision", case.rule_set)
        case.served_on = on + timedelta(days=30)
        await repo.add(
            session,
            ExcludedInterval(case_id=case.id, kind="public_notice", starts_on=on, ends_on=case.served_on),
        )
        return {
            "public_notice_from": on.isoformat(),
            "served_on": case.served_on.isoformat(),
            "rule": days.code,
        }
    case.served_on = on
    if case.decision_kind != DecisionKind.PENALTY or case.fine_current == 0:
        case.execution_completed_on = on
    return {}


async def _close(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    fine, surcharge = await _outstanding(session, case)
    court = case.court_enforcement_applied_on is not None  # the execution passed to the court
    if (fine > 0 or surcharge > 0) and not court:
        raise Conflict(
            f"The decision is not executed: {fine} yuan of the fine and {surcharge} yuan of surcharge "
            "are owed (or apply to the court for enforcement, apply_court_enforcement).",
            slug="execution-incomplete",
            fine_owed=str(fine),
            surcharge_owed=str(surcharge),
        )
    case.closed_on = on
    return (
        {"passed_to_court": True, "fine_owed": str(fine), "surcharge_owed": str(surcharge)} if court else {}
    )


async def _publish(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    if (
        case.procedure != Procedure.ORDINARY
        or case.decision_kind != DecisionKind.PENALTY
        or not await _publishable(session, case)
    ):
        raise Conflict(
            "Only ordinary-procedure penalty decisions other than a warning are published (公示).",
            slug="publication-not-required",
        )
    case.published_on = on
    return {}


async def _revise_decision(session, registry, case, data, on, officer_ids) -> dict[str, Any]:
    """A reconsideration (复议) or a court changed the decision: the current sanctions are set,
    never heavier than decided (不利变更禁止); a certificate action set aside is restored in the
    registry through the outbox. The decided sanctions are kept as they were."""
    decided = await repo.penalties(session, case.id, "decided")  # type: ignore[arg-type]
    wanted = {(p.kind, p.certificate_id): (index, p) for index, p in enumerate(data.penalties or [])}
    changes = []
    for item in decided:
        index, revised = wanted.pop((item.kind, item.certificate_id), (None, None))
        if revised is None:
            item.in_force = False
            item.amount_current = Decimal("0") if item.amount_initial is not None else None
            changes.append({"kind": item.kind, "set_aside": True, "certificate_id": item.certificate_id})
            if item.kind in CERTIFICATE_ACTIONS and item.registry_state != RegistryActionState.REJECTED:
                event = await events.certificate_action_decided(session, case, item, RESTORE, on)
                item.registry_event_id = str(event.id)
                item.registry_state = RegistryActionState.PENDING
            continue
        if revised.amount is not None and (
            item.amount_initial is None or revised.amount > item.amount_initial
        ):
            raise Conflict(
                f"A revision does not make the {item.kind} heavier than decided "
                f"({item.amount_initial} yuan).",
                slug="revision-heavier-than-decided",
                loc=f"body.penalties.{index}.amount",
            )
        item.amount_current = revised.amount if revised.amount is not None else item.amount_current
        changes.append({"kind": item.kind, "amount_current": str(item.amount_current)})
    if wanted:
        index, extra = next(iter(wanted.values()))
        raise UnprocessableEntity(
            f"The decision has no {extra.kind} to revise: a revision changes or sets aside "
            "decided sanctions.",
            errors=[
                {"loc": f"body.penalties.{index}", "message": "not a decided sanction", "type": "not_decided"}
            ],
        )
    case.fine_current = sum(
        (i.amount_current or Decimal("0") for i in decided if i.kind == PenaltyKind.FINE and i.in_force),
        Decimal("0"),
    )
    case.circumstances = sorted({*case.circumstances, "reconsideration_or_litigation"})
    case.needs_filing = True  # a case that went to reconsideration or court is filed (DOMAIN.md)
    await session.flush()
    return {"changes": changes}


def _elsewhere(module: str, name: str) -> Any:
    """A step's handler kept in another module of the package (which imports this one)."""

    async def handler(*args: Any) -> dict[str, Any]:
        return await getattr(import_module(f"services.enforcement.cases.{module}"), name)(*args)

    return handler


_CASE_HANDLERS = {
    CaseStep.REVISE_DECISION: _revise_decision,
    CaseStep.START_INVESTIGATION: _start_investigation,
    CaseStep.SUSPEND: _suspend,
    CaseStep.RESUME: _resume,
    CaseStep.TERMINATE: _terminate,
    CaseStep.TRANSFER: _transfer,
    CaseStep.CLOSE_INVESTIGATION: _close_investigation,
    CaseStep.REQUEST_REVIEW: _request_review,
    CaseStep.REVIEW_AGREE: _review_agree,
    CaseStep.REVIEW_CORRECT: _review_correct,
    CaseStep.REVIEW_RETURN: _review_return,
    CaseStep.NOTIFY: _notify,
    CaseStep.REQUEST_HEARING: _request_hearing,
    CaseStep.CONCLUDE_HEARING: _conclude_hearing,
    CaseStep.EXTEND_DECISION: _extend_decision,
    CaseStep.DECIDE: _decide,
    CaseStep.DECIDE_NO_PENALTY: _decide_no_penalty,
    CaseStep.SERVE: _serve,
    CaseStep.CLOSE: _close,
    CaseStep.PUBLISH: _publish,
    CaseStep.REMIND_PAYMENT: _elsewhere("execution", "remind_payment"),
    CaseStep.APPLY_COURT_ENFORCEMENT: _elsewhere("execution", "apply_court_enforcement"),
}


async def _send_certificate_actions(session: AsyncSession, case: Case, on: date) -> None:
    """The closed loop: each decided suspension or revocation goes to the registry through the
    outbox, in the decision's transaction, so it arrives even if the registry is down now."""
    for item in await repo.penalties(session, case.id, "decided"):  # type: ignore[arg-type]
        action = CERTIFICATE_ACTIONS.get(PenaltyKind(item.kind)) if item.in_force else None
        if action is None:
            continue
        event = await events.certificate_action_decided(session, case, item, action, on)
        item.registry_event_id = str(event.id)
        item.registry_state = RegistryActionState.PENDING
    await session.flush()


# --- simple procedure ----------------------------------------------------------


async def decide_on_the_spot(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    data: SimpleCaseCreate,
) -> Case:
    """A case decided on the spot (简易程序): a warning or a fine within the simple limits."""
    if not principal.has_role(Role.ENFORCEMENT):
        raise Forbidden("An on-the-spot decision is taken by an enforcement officer.", slug="role-required")
    actor = await actor_for(registry, principal, "decide_on_the_spot")
    bureau_id, path = await _handling_bureau(registry, principal, data.bureau_id)
    on = _step_date(data.decided_on)
    subject = await registry.subject(data.subject_type, data.subject_id, loc="body.subject_id")
    violation = await get_violation(session, data.violation_code, data.violation_regulation)
    case = Case(
        number=await _case_number(session, bureau_id, on),
        bureau_id=bureau_id,
        bureau_path=path,
        procedure=Procedure.SIMPLE,
        state=CaseState.DECIDED,
        title=data.title,
        party_name=data.party_name,
        party_kind=data.party_kind,
        subject_type=data.subject_type,
        subject_id=data.subject_id,
        rule_set=await current_rule_set(session),
        opened_on=on,
        decided_on=on,
        decision_kind=DecisionKind.PENALTY,
        facts=data.facts,
        legal_basis=data.legal_basis,
        violation_code=violation.code,
        violation_regulation=violation.regulation,
        created_by=principal.account_id,
    )
    await repo.add(session, case)
    items = await _check_penalties(session, registry, case, data.penalties, violation, None)
    check = await simple_procedure_check(session, party_kind=data.party_kind, items=_catalogue_items(items))
    if not check.required:
        raise Conflict(
            "The simple procedure takes only a warning or a small fine: " + "; ".join(check.reasons),
            slug="simple-procedure-limit",
            reasons=check.reasons,
        )
    await repo.add(
        session,
        CaseSubject(
            case_id=case.id,
            subject_type=data.subject_type,
            subject_id=data.subject_id,
            name=subject.name,
            number=subject.number,
        ),
    )
    await _assign(
        session, registry, principal, case, data.officer_ids, on, reason="on the spot", loc="body.officer_ids"
    )
    if len(await repo.current_officers(session, case.id)) < MIN_CASE_OFFICERS:  # type: ignore[arg-type]
        raise Conflict(f"At least {MIN_CASE_OFFICERS} officers act on the spot.", slug="too-few-officers")
    await _store_penalties(session, case, "decided", items)
    fine = sum((i["amount"] for i in items if i["kind"] == PenaltyKind.FINE), Decimal("0"))
    case.fine_decided = case.fine_current = fine
    await _refresh_case_due(session, case)
    await _record(
        session,
        actor,
        "decide_on_the_spot",
        on,
        case=case,
        to_state=case.state,
        legal_basis=data.legal_basis,
        details={"number": case.number, "fine": str(fine)},
    )
    await audit.record(
        session, principal, "case.decided_on_the_spot", "case", case.id, data.model_dump(mode="json")
    )
    await events.case_changed(session, case)
    return case


# --- evidence and execution ------------------------------------------------------


async def add_evidence(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    case: Case,
    data: EvidenceCreate,
) -> Evidence:
    if case.state not in {CaseState.OPENED, CaseState.INVESTIGATING, CaseState.SUSPENDED}:
        raise Conflict(
            "Evidence is registered while the case is investigated.",
            slug="case-not-investigating",
            state=case.state,
        )
    actor = await actor_for(registry, principal, "register_evidence")
    current = {o.officer_id for o in await repo.current_officers(session, case.id)}  # type: ignore[arg-type]
    if actor.officer_id is not None and actor.officer_id not in current:
        raise Forbidden("Evidence is registered by an officer of the case.", slug="not-case-officer")
    if data.measure != "none" and data.measure_started_on is None:
        raise _missing("measure_started_on", "register_evidence")
    row = await repo.add(
        session, Evidence(case_id=case.id, recorded_by=principal.account_id, **data.model_dump())
    )
    await _record(
        session,
        actor,
        "register_evidence",
        data.collected_on if data.collected_on >= case.opened_on else case.opened_on,
        case=case,
        from_state=case.state,
        to_state=case.state,
        details={"evidence_id": row.id, "kind": data.kind, "measure": data.measure},
    )
    await audit.record(
        session,
        principal,
        "case.evidence_registered",
        "case",
        case.id,
        {"evidence_id": row.id, **data.model_dump(mode="json")},
    )
    return row


async def evidence_due(session: AsyncSession, case: Case, row: Evidence) -> date | None:
    """When a preservation must be decided or a seizure ends."""
    if row.measure == "none" or row.measure_started_on is None:
        return None
    if row.measure == "preservation" and row.measure_decided_on is not None:
        return None  # decided: the preservation ended
    rule = PRESERVATION_RULE if row.measure == "preservation" else SEIZURE_RULE
    extension = 0
    if row.measure_extended:  # once, by the rule's extension
        extension = (await _rule(session, rule, case.rule_set)).extension_days or 0
    deadline = await compute_deadline(
        session, rule, row.measure_started_on, extension_days=extension, rule_set=case.rule_set
    )
    return deadline.due


async def record_payment(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    case: Case,
    data: PaymentCreate,
) -> Payment:
    if case.state not in {CaseState.SERVED, CaseState.EXECUTING}:
        raise Conflict(
            "Payments are recorded once the decision is served.", slug="case-not-executing", state=case.state
        )
    actor = await actor_for(registry, principal, CaseStep.RECORD_PAYMENT)
    on = _step_date(data.paid_on, case.served_on)
    fine_owed, surcharge_owed = await _outstanding(session, case)
    owed = fine_owed if data.kind == "fine" else surcharge_owed
    if data.amount > owed:
        raise Conflict(
            f"{data.amount} yuan exceeds the {data.kind} owed ({owed} yuan).",
            slug="overpayment",
            owed=str(owed),
        )
    payment = await repo.add(
        session, Payment(case_id=case.id, recorded_by=principal.account_id, **data.model_dump())
    )
    case.paid_total += data.amount
    before = case.state
    case.state = CaseState.EXECUTING
    fine_owed, surcharge_owed = await _outstanding(session, case)
    if fine_owed == 0 and surcharge_owed == 0:
        case.execution_completed_on = on
    _bump(case)
    await _refresh_case_due(session, case)
    await _record(
        session,
        actor,
        CaseStep.RECORD_PAYMENT,
        on,
        case=case,
        from_state=before,
        to_state=case.state,
        details={
            "amount": str(data.amount),
            "kind": data.kind,
            "fine_owed": str(fine_owed),
            "surcharge_owed": str(surcharge_owed),
        },
    )
    await audit.record(
        session, principal, "case.payment_recorded", "case", case.id, data.model_dump(mode="json")
    )
    await events.case_changed(session, case)
    return payment


# --- answers from other services ---------------------------------------------------


async def apply_registry_answer(
    session: AsyncSession, audit: AuditLog, event_id: str, applied: bool, reason: str, principal: Principal
) -> bool:
    """The registry's answer to a certificate action: shown on the penalty item and the timeline."""
    item = await repo.penalty_by_event(session, event_id)
    if item is None:
        return False
    item.registry_state = RegistryActionState.APPLIED if applied else RegistryActionState.REJECTED
    item.registry_reason = reason
    case = await repo.lock_case(session, item.case_id)
    assert case is not None
    _bump(case)
    await _record(
        session,
        Actor(principal),
        "registry_answered",
        today(),
        case=case,
        from_state=case.state,
        to_state=case.state,
        reason=reason,
        details={"certificate_number": item.certificate_number, "applied": applied, "event_id": event_id},
    )
    await audit.record(
        session,
        principal,
        "case.registry_answered",
        "case",
        case.id,
        {"event_id": event_id, "applied": applied, "reason": reason},
    )
    await events.case_changed(session, case)
    return True


async def apply_review_answer(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient | None,
    principal: Principal,
    case: Case,
    answer: ReviewAnswered,
) -> Case:
    """The legal-affairs body's answer to a review request (an event of the statistics service):
    agree → ``review_agree``, correct → ``review_correct`` with the corrected sanctions,
    investigate further → ``review_return``. A version-1 answer names only its outcome."""
    opinion = answer.opinion or ("agree" if answer.outcome == "approved" else "investigate_further")
    fields: dict[str, Any] = {"step": REVIEW_OPINION_STEPS[opinion], "reason": answer.reason or opinion}
    if answer.answered_on is not None:
        fields["occurred_on"] = answer.answered_on
    if opinion == "correct":
        fields["penalties"] = [p.model_dump(exclude_none=True) for p in answer.penalties or []]
        if answer.violation_code:
            fields["violation_code"] = answer.violation_code
        if answer.violation_regulation:
            fields["violation_regulation"] = answer.violation_regulation
    try:
        data = CaseTransition.model_validate(fields)
    except ValidationError as exc:
        raise UnprocessableEntity(
            f"The review's answer does not make a step of the case: {exc.errors()[0]['msg']}."
        ) from None
    reviewer = Actor(
        principal,
        answer.reviewer_officer_id,
        answer.reviewer_name,
        answer.reviewer_post_id,
        answer.reviewer_post_name,
    )
    return await take_case_step(
        session,
        audit,
        registry,
        principal,
        case,
        data,
        f'"{case.version}"',
        answered_by=reviewer,  # type: ignore[arg-type]
    )


REVIEW_OPINION_STEPS = {
    "agree": CaseStep.REVIEW_AGREE,
    "correct": CaseStep.REVIEW_CORRECT,
    "investigate_further": CaseStep.REVIEW_RETURN,
}


# --- traceability --------------------------------------------------------------------


async def chain_of(
    session: AsyncSession, principal: Principal, subject_type: str, subject_id: int
) -> dict[str, Any]:
    leads = await repo.leads_of_subject(session, subject_type, subject_id, principal.bureau_path)
    cases = await repo.cases_of_subject(session, subject_type, subject_id, principal.bureau_path)
    return {
        "subject_type": subject_type,
        "subject_id": subject_id,
        "leads": [lead_read(lead) for lead in leads],
        "cases": [await case_read(session, case) for case in cases],
    }


async def note_on_case(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    case: Case,
    step: str,
    reason: str | None,
    details: dict[str, Any],
    on: date,
) -> None:
    """An answer from another body shown on the case's timeline, its state unchanged."""
    _bump(case)
    await _record(
        session,
        Actor(principal),
        step,
        on,
        case=case,
        from_state=case.state,
        to_state=case.state,
        reason=reason,
        details=details,
    )
    await audit.record(session, principal, f"case.{step}", "case", case.id, {"reason": reason, **details})
    await events.case_changed(session, case)
