"""The events of leads and cases, written to the outbox in the change's own transaction."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.event_schemas import CaseChanged, CertificateActionDecided, LeadChanged, ReviewRequested
from services.common.events import Event
from services.enforcement.cases import repository as repo
from services.enforcement.cases.models import Case, CaseOfficer, Lead, PenaltyItem
from services.enforcement.models import OUTBOX

LEAD_CHANGED = "enforcement.lead.changed"
CASE_CHANGED = "enforcement.case.changed"
REVIEW_REQUESTED = "enforcement.review.requested"
CERTIFICATE_ACTION_DECIDED = "enforcement.certificate_action.decided"


async def lead_changed(session: AsyncSession, lead: Lead) -> Event:
    return await OUTBOX.emit(
        session,
        LEAD_CHANGED,
        aggregate_type="lead",
        aggregate_id=lead.id,  # type: ignore[arg-type]
        aggregate_version=lead.version,
        bureau_id=lead.bureau_id,
        bureau_path=lead.bureau_path,
        payload=LeadChanged(
            lead_id=lead.id,  # type: ignore[arg-type]
            state=lead.state,
            source=lead.source,
            subject_type=lead.subject_type,
            subject_id=lead.subject_id,
            received_on=lead.received_on,
            decided_on=lead.decided_on,
            next_due=lead.next_due,
            case_id=lead.case_id,
            inspection_id=lead.inspection_id,
        ),
    )


async def _about_case(session: AsyncSession, type_: str, case: Case, payload) -> Event:
    """An event of ``case``: its id, version and bureau make the envelope."""
    return await OUTBOX.emit(
        session,
        type_,
        aggregate_type="case",
        aggregate_id=case.id,  # type: ignore[arg-type]
        aggregate_version=case.version,
        bureau_id=case.bureau_id,
        bureau_path=case.bureau_path,
        payload=payload,
    )


async def case_changed_payload(
    session: AsyncSession, case: Case, *, officers: list[CaseOfficer] | None = None
) -> CaseChanged:
    """The facts statistics keeps of ``case``: the event's payload, and what the case-facts
    feed answers (one function, so the two never differ)."""
    # Sanctions are decided only with a decision: before it there is nothing to read.
    decided = await repo.penalties(session, case.id, "decided") if case.decided_on else []  # type: ignore[arg-type]
    if officers is None:
        officers = await repo.current_officers(session, case.id)  # type: ignore[arg-type]
    return CaseChanged(
        case_id=case.id,  # type: ignore[arg-type]
        number=case.number,
        lead_id=case.lead_id,
        procedure=case.procedure,
        state=case.state,
        subject_type=case.subject_type,
        subject_id=case.subject_id,
        party_kind=case.party_kind,
        violation_regulation=case.violation_regulation,
        violation_code=case.violation_code,
        opened_on=case.opened_on,
        decided_on=case.decided_on,
        closed_on=case.closed_on,
        decision_kind=case.decision_kind,
        penalty_kinds=sorted({p.kind for p in decided}),
        fine_decided=case.fine_decided,
        fine_current=case.fine_current,
        confiscation=sum(
            (p.amount_current or Decimal("0") for p in decided if p.kind == "confiscation"), Decimal("0")
        ),
        paid_total=case.paid_total,
        transferred_to=case.transferred_to,
        transferred_to_judicial_organ="transferred_to_judicial_organ" in case.circumstances,
        needs_legal_review=case.needs_legal_review,
        needs_filing=case.needs_filing,
        next_due=case.next_due,
        next_due_rule=case.next_due_rule,
        officer_count=len(officers),
    )


async def case_changed(
    session: AsyncSession, case: Case, *, officers: list[CaseOfficer] | None = None
) -> Event:
    """``officers``: the case's current officers when the caller has them at hand."""
    return await _about_case(
        session, CASE_CHANGED, case, await case_changed_payload(session, case, officers=officers)
    )


async def review_requested(session: AsyncSession, case: Case, on: date) -> Event:
    """The case's review requests are their own aggregate (``case_review``, the case's id and
    version): a consumer's inbox drops an event older than the newest it applied of its aggregate,
    and a later change of the case (a deadline extended while under review) reaching it first must
    not make the request look stale."""
    officers = await repo.all_officers(session, case.id)  # type: ignore[arg-type]
    return await OUTBOX.emit(
        session,
        REVIEW_REQUESTED,
        aggregate_type="case_review",
        aggregate_id=case.id,  # type: ignore[arg-type]
        aggregate_version=case.version,
        bureau_id=case.bureau_id,
        bureau_path=case.bureau_path,
        payload=ReviewRequested(
            case_id=case.id,  # type: ignore[arg-type]
            number=case.number,
            requested_on=on,
            officer_ids=sorted({o.officer_id for o in officers}),
            categories=case.legal_review_categories,
            review_kind=case.review_kind,  # type: ignore[arg-type]
        ),
    )


async def certificate_action_decided(
    session: AsyncSession, case: Case, item: PenaltyItem, action: str, on: date
) -> Event:
    return await _about_case(
        session,
        CERTIFICATE_ACTION_DECIDED,
        case,
        CertificateActionDecided(
            action=action,  # type: ignore[arg-type]
            certificate_id=item.certificate_id,
            certificate_number=item.certificate_number or "",
            case_ref=case.number,
            reason=(case.legal_basis or "penalty decision")[:2000],
            decided_on=on,
        ),
    )
