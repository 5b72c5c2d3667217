"""The events the enforcement service consumes: inspection referrals become leads (the closed
loop from supervision), the registry answers certificate actions, and the legal-affairs body
answers legal reviews and filings. Each handler runs in the inbox's transaction, never commits."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal, PrincipalKind, Role
from services.common.dates import today
from services.common.event_schemas import (
    CertificateActionAnswer,
    FilingAnswered,
    InspectionReferred,
    ReviewAnswered,
)
from services.common.events import Event
from services.common.outbox import Outcome, parse_payload
from services.common.problems import ProblemError
from services.enforcement.cases import repository as repo
from services.enforcement.cases import service
from services.enforcement.cases.models import CaseState
from services.enforcement.models import AUDIT

# The body each sending service speaks for: the legal-affairs body's answers take its steps.
SPEAKS_FOR = {"statistics": Role.LEGAL}


def _acting(service_name: str, event: Event) -> Principal:
    """The sending service, acting for the event's bureau (and for its body, if it has one)."""
    path = event.bureau_path or "1."
    return Principal(
        account_id=service_name,
        kind=PrincipalKind.SERVICE,
        bureau_id=event.bureau_id or int(path.split(".")[0]),
        bureau_path=path,
        roles=frozenset({Role.SERVICE, *([SPEAKS_FOR[service_name]] if service_name in SPEAKS_FOR else [])}),
    )


async def lead_from_referral(session: AsyncSession, event: Event) -> Outcome:
    referral = parse_payload(InspectionReferred, event)
    if isinstance(referral, Outcome):
        return referral
    if not event.bureau_path:
        return Outcome.rejected("A referral names the inspecting bureau's path.")
    await service.lead_from_referral(session, AUDIT, _acting("registry", event), referral, event.bureau_path)
    return Outcome.applied()


async def certificate_action_answered(session: AsyncSession, event: Event) -> Outcome:
    answer = CertificateActionAnswer.model_validate(event.payload)
    applied = event.type.endswith(".applied")
    found = await service.apply_registry_answer(
        session, AUDIT, str(answer.decision_event_id), applied, answer.reason, _acting("registry", event)
    )
    return Outcome.applied() if found else Outcome.rejected("No decided penalty item sent that action.")


async def review_answered(session: AsyncSession, event: Event) -> Outcome:
    """The legal-affairs body's opinion takes the review step (agree, correct, or investigate
    further); an answer the case cannot take (no longer under review, a correction outside the
    catalogue's range) is rejected with its reason and the case is left as it was."""
    answer = parse_payload(ReviewAnswered, event)
    if isinstance(answer, Outcome):
        return answer
    case = await repo.lock_case(session, answer.case_id)
    if case is None:
        return Outcome.rejected(f"No case {answer.case_id}.")
    if case.state != CaseState.UNDER_REVIEW:
        return Outcome.rejected(f"Case {case.id} is {case.state}, not under review.")
    try:
        async with session.begin_nested():
            # No registry client here: a corrected sanction names the case's own certificates.
            await service.apply_review_answer(
                session, AUDIT, None, _acting("statistics", event), case, answer
            )
    except ProblemError as exc:
        return Outcome.rejected(exc.detail or "The answer could not be applied.")
    return Outcome.applied()


async def filing_answered(session: AsyncSession, event: Event) -> Outcome:
    answer = FilingAnswered.model_validate(event.payload)
    case = await repo.lock_case(session, answer.case_id)
    if case is None:
        return Outcome.rejected(f"No case {answer.case_id}.")
    await service.note_on_case(
        session,
        AUDIT,
        _acting("statistics", event),
        case,
        f"filing_{answer.outcome}",
        answer.reason,
        {"filing_id": answer.filing_id},
        today(),
    )
    return Outcome.applied()


async def certificate_status_changed(session: AsyncSession, event: Event) -> Outcome:
    """Seen, nothing to change: a case reads its certificate's state from the registry."""
    return Outcome.applied()


HANDLERS = {
    "registry.inspection.referred": lead_from_referral,
    "registry.certificate_action.applied": certificate_action_answered,
    "registry.certificate_action.rejected": certificate_action_answered,
    "registry.certificate.status_changed": certificate_status_changed,
    "statistics.review.answered": review_answered,
    "statistics.filing.answered": filing_answered,
}
