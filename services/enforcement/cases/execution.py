"""Execution beyond payment: the measures on evidence and enforcement by the court.

* A seizure (查封、扣押) lasts the ``seizure`` rule's days and is extended once, by the rule's
  extension, with a head's approval (``extend_seizure``).
* An evidence preservation (先行登记保存) is decided within the
  ``evidence_preservation_decision`` rule's working days, or it lapses
  (``decide_preservation``): tested, returned, transferred, seized, released or confiscated.
* A party that neither pays nor appeals is reminded (催告, ``remind_payment``); once the
  ``court_enforcement_reminder`` period has passed, the head applies to the people's court
  for enforcement (申请人民法院强制执行, ``apply_court_enforcement``). The execution then
  passes to the court, and the case may be closed though money is owed.

The two court steps are steps of the procedure's table (``procedure.py``); the handlers here
are called from ``service.take_case_step``. Functions here never commit.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal, Role
from services.common.problems import Conflict, Forbidden, NotFound
from services.enforcement.calendar.service import compute_deadline, deadline_rule
from services.enforcement.cases import repository as repo
from services.enforcement.cases import service
from services.enforcement.cases.models import Case, CaseState, Evidence
from services.enforcement.cases.schemas import PreservationDecision, SeizureExtension
from services.enforcement.registry import RegistryClient

REMINDER_RULE = "court_enforcement_reminder"
EXTEND_SEIZURE = "extend_seizure"
DECIDE_PRESERVATION = "decide_preservation"
ENDED = frozenset(
    {CaseState.CLOSED, CaseState.ARCHIVED, CaseState.PUBLISHED, CaseState.TERMINATED, CaseState.TRANSFERRED}
)


# --- court enforcement (申请法院强制执行) --------------------------------------------


async def _owed(session: AsyncSession, case: Case) -> tuple[Any, Any]:
    fine, surcharge = await service._outstanding(session, case)
    if fine == 0 and surcharge == 0:
        raise Conflict(
            "Nothing is owed under the decision: there is nothing to enforce.", slug="nothing-owed"
        )
    return fine, surcharge


def _not_applied(case: Case) -> None:
    if case.court_enforcement_applied_on is not None:
        raise Conflict(
            f"The bureau applied to the court for enforcement on {case.court_enforcement_applied_on}.",
            slug="court-enforcement-applied",
            applied_on=case.court_enforcement_applied_on.isoformat(),
        )


async def remind_payment(session, registry, case: Case, data, on: date, officer_ids) -> dict[str, Any]:
    """The reminder (催告) to a party that did not pay by the payment deadline."""
    _not_applied(case)
    fine, surcharge = await _owed(session, case)
    assert case.served_on is not None  # served or executing
    payment_due = (await compute_deadline(session, "payment", case.served_on, rule_set=case.rule_set)).due
    if on <= payment_due:
        raise Conflict(
            f"The party may pay until {payment_due}: a reminder is served after that.",
            slug="payment-not-due",
            payment_due=payment_due.isoformat(),
        )
    case.payment_reminded_on = on
    reminder = await compute_deadline(session, REMINDER_RULE, on, rule_set=case.rule_set)
    return {
        "reminder_ends_on": reminder.due.isoformat(),
        "fine_owed": str(fine),
        "surcharge_owed": str(surcharge),
    }


async def apply_court_enforcement(
    session, registry, case: Case, data, on: date, officer_ids
) -> dict[str, Any]:
    """The application to the court, once the reminder's period passed with money owed."""
    _not_applied(case)
    if case.payment_reminded_on is None:
        raise Conflict(
            "The party is reminded (催告, remind_payment) before the bureau applies to the court.",
            slug="payment-not-reminded",
        )
    reminder = await compute_deadline(
        session, REMINDER_RULE, case.payment_reminded_on, rule_set=case.rule_set
    )
    if on <= reminder.due:
        raise Conflict(
            f"The party reminded on {case.payment_reminded_on} may perform until {reminder.due}: "
            "apply to the court after that.",
            slug="reminder-period-running",
            reminder_ends_on=reminder.due.isoformat(),
            reminded_on=case.payment_reminded_on.isoformat(),
        )
    fine, surcharge = await _owed(session, case)
    case.court_enforcement_applied_on = on
    return {
        "fine_owed": str(fine),
        "surcharge_owed": str(surcharge),
        "reminded_on": str(case.payment_reminded_on),
    }


# --- measures on evidence ------------------------------------------------------------------


async def _measure_step(
    session: AsyncSession,
    registry: RegistryClient,
    principal: Principal,
    case: Case,
    evidence_id: int,
    step: str,
) -> tuple[service.Actor, Evidence]:
    if case.state in ENDED:
        raise Conflict(
            f"A {case.state} case takes no measures on evidence.", slug="case-not-running", state=case.state
        )
    if not principal.has_role(Role.HEAD):
        raise Forbidden(
            f"The step {step} is approved by the head of the enforcement body.", slug="role-required"
        )
    actor = await service.actor_for(registry, principal, step)
    row = await repo.lock_evidence(session, case.id, evidence_id)  # type: ignore[arg-type]
    if row is None:
        raise NotFound(f"Evidence {evidence_id} not found.")
    return actor, row


async def _note(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    actor: service.Actor,
    case: Case,
    step: str,
    on: date,
    reason: str,
    details: dict[str, Any],
) -> None:
    await service._record(
        session,
        actor,
        step,
        on,
        case=case,
        from_state=case.state,
        to_state=case.state,
        reason=reason,
        details=details,
    )
    await audit.record(session, principal, f"case.{step}", "case", case.id, {"reason": reason, **details})


async def extend_seizure(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    case: Case,
    evidence_id: int,
    data: SeizureExtension,
) -> Evidence:
    """Extends a running seizure once, by the rule's extension (查封、扣押期限延长)."""
    actor, row = await _measure_step(session, registry, principal, case, evidence_id, EXTEND_SEIZURE)
    if row.measure != "seizure" or row.measure_started_on is None:
        raise Conflict(
            f"Evidence {evidence_id} is not under seizure ({row.measure}).",
            slug="not-a-seizure",
            measure=row.measure,
        )
    rule = await deadline_rule(session, service.SEIZURE_RULE, case.rule_set)
    if row.measure_extended or not rule.extension_days:
        raise Conflict(
            f"A seizure is extended once, by {rule.extension_days or 0} days"
            + (f"; this one was on {row.measure_extended_on}." if row.measure_extended_on else "."),
            slug="extension-exceeded",
            allowed_days=rule.extension_days or 0,
            extended_on=row.measure_extended_on.isoformat() if row.measure_extended_on else None,
        )
    on = service._step_date(data.occurred_on, row.measure_started_on)
    due = await service.evidence_due(session, case, row)
    assert due is not None
    if on > due:
        raise Conflict(
            f"The seizure ended on {due}: an ended seizure is not extended.",
            slug="seizure-ended",
            ended_on=due.isoformat(),
        )
    row.measure_extended = True
    row.measure_extended_on = on
    extended = await service.evidence_due(session, case, row)
    await session.flush()
    details = {
        "evidence_id": row.id,
        "extension_days": rule.extension_days,
        "due_before": due.isoformat(),
        "due": extended.isoformat() if extended else None,
    }
    await _note(session, audit, principal, actor, case, EXTEND_SEIZURE, on, data.reason, details)
    return row


async def decide_preservation(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    case: Case,
    evidence_id: int,
    data: PreservationDecision,
) -> Evidence:
    """Decides on preserved evidence within the rule's working days; a seizure decided runs
    from the decision's day."""
    actor, row = await _measure_step(session, registry, principal, case, evidence_id, DECIDE_PRESERVATION)
    if row.measure_decided_on is not None:
        raise Conflict(
            f"Evidence {evidence_id} was decided on {row.measure_decided_on} ({row.measure_decision}).",
            slug="measure-decided",
            decided_on=row.measure_decided_on.isoformat(),
            decision=row.measure_decision,
        )
    if row.measure != "preservation" or row.measure_started_on is None:
        raise Conflict(
            f"Evidence {evidence_id} is not under preservation ({row.measure}).",
            slug="not-a-preservation",
            measure=row.measure,
        )
    on = service._step_date(data.occurred_on, row.measure_started_on)
    due = await service.evidence_due(session, case, row)
    assert due is not None
    if on > due:
        raise Conflict(
            f"The preservation of {row.measure_started_on} was to be decided by {due}; it lapsed.",
            slug="preservation-lapsed",
            decide_by=due.isoformat(),
        )
    preserved_from = row.measure_started_on
    row.measure_decided_on = on
    row.measure_decision = data.decision
    if data.decision == "seize":
        row.measure = "seizure"
        row.measure_started_on = on
    await session.flush()
    details = {
        "evidence_id": row.id,
        "decision": data.decision,
        "preserved_from": preserved_from.isoformat(),
        "decide_by": due.isoformat(),
    }
    await _note(session, audit, principal, actor, case, DECIDE_PRESERVATION, on, data.reason, details)
    return row
