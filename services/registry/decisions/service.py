"""The consumer of ``enforcement.certificate_action.decided``: a penalty decision that suspends,
revokes or restores a certificate reaches the registry (the closed loop's feedback).

Each event is applied once (the inbox records its id in the same transaction
as its effect) through the certificate's own status step, so the state machine
and the history (who, when, why, which case, which decision event) are the same
as for a change made by hand. A move the certificate's state does not allow, a
certificate the registry does not hold, or a number that names another
certificate is refused: the inbox records the event as ``rejected`` with the
reason, and the registry answers ``registry.certificate_action.rejected``;
an applied action is answered ``registry.certificate_action.applied``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal, PrincipalKind, Role
from services.common.event_schemas import (
    CertificateActionApplied,
    CertificateActionDecided,
    CertificateActionRejected,
)
from services.common.events import Event
from services.common.outbox import Outcome, parse_payload
from services.common.problems import Forbidden, InvalidTransition, UnprocessableEntity
from services.registry.certification.certificates.service import change_certificate_status
from services.registry.decisions import repository as repo
from services.registry.models import AUDIT, NATIONAL_BUREAU_ID, OUTBOX

DECIDED = "enforcement.certificate_action.decided"
APPLIED = "registry.certificate_action.applied"
REJECTED = "registry.certificate_action.rejected"
DECIDING_SERVICE = "enforcement"


@dataclass(frozen=True, slots=True)
class _Found:
    """The certificate an action names, as it stood before the action."""

    id: int
    number: str
    status: str
    version: int


def decision_actor(event: Event) -> Principal:
    """Who takes the step: the enforcement service, on behalf of the deciding bureau."""
    return Principal(
        account_id=DECIDING_SERVICE,
        kind=PrincipalKind.SERVICE,
        bureau_id=event.bureau_id or NATIONAL_BUREAU_ID,
        bureau_path=event.bureau_path or f"{NATIONAL_BUREAU_ID}.",
        roles=frozenset({Role.SERVICE}),
    )


async def _certificate(session: AsyncSession, decided: CertificateActionDecided):
    """(the certificate, None) or (None, why it cannot be the one the decision means)."""
    if decided.certificate_id is not None:
        certificate = await repo.certificate_by_id(session, decided.certificate_id)
        if certificate is None:
            return None, f"The registry holds no certificate {decided.certificate_id}."
        if certificate.number != decided.certificate_number:
            return None, (
                f"Certificate {decided.certificate_id} is numbered {certificate.number}, "
                f"not {decided.certificate_number}."
            )
        return certificate, None
    matches = await repo.certificates_by_number(session, decided.certificate_number)
    if not matches:
        return None, f"The registry holds no certificate numbered {decided.certificate_number}."
    if len(matches) > 1:
        return None, (
            f"Certificates of several schemes are numbered {decided.certificate_number}; "
            "the decision must name the certificate's id."
        )
    return matches[0], None


async def _answer(
    session: AsyncSession,
    event: Event,
    decided: CertificateActionDecided,
    found: _Found | None,
    *,
    applied: bool,
    reason: str,
) -> None:
    payload_model = CertificateActionApplied if applied else CertificateActionRejected
    await OUTBOX.emit(
        session,
        APPLIED if applied else REJECTED,
        aggregate_type="certificate",
        aggregate_id=found.id if found else decided.certificate_number,
        aggregate_version=found.version if found else 0,
        # The deciding bureau's scope, so its case sees the answer.
        bureau_id=event.bureau_id,
        bureau_path=event.bureau_path,
        payload=payload_model(
            decision_event_id=event.id,
            certificate_id=found.id if found else None,
            certificate_number=found.number if found else decided.certificate_number,
            action=decided.action,
            reason=reason[:2000],
        ),
    )


async def apply_certificate_action(session: AsyncSession, event: Event) -> Outcome:
    """Handler of ``enforcement.certificate_action.decided`` (never commits: the inbox does)."""
    decided = parse_payload(CertificateActionDecided, event)
    if isinstance(decided, Outcome):
        # Nothing to answer about: the payload names no certificate or action we can read.
        return decided
    certificate, refusal = await _certificate(session, decided)
    if certificate is None:
        reason = refusal or "No such certificate."
        await _answer(session, event, decided, None, applied=False, reason=reason)
        return Outcome.rejected(reason)
    before = _Found(certificate.id, certificate.number, certificate.status, certificate.version)  # type: ignore[arg-type]
    try:
        # A savepoint: a refused step leaves nothing of itself behind.
        async with session.begin_nested():
            await change_certificate_status(
                session,
                AUDIT,
                certificate,
                decided.action,
                reason=f"{decided.reason} (decided {decided.decided_on.isoformat()})",
                case_ref=decided.case_ref,
                actor=decision_actor(event),
                decision_event_id=str(event.id),
            )
    except (InvalidTransition, Forbidden, UnprocessableEntity) as exc:
        # The certificate's own rules refuse the step (its state, or what the step must record).
        reason = exc.detail or f"A {before.status} certificate cannot take the step {decided.action}."
        await _answer(session, event, decided, before, applied=False, reason=reason)
        return Outcome.rejected(reason)
    after = _Found(before.id, before.number, certificate.status, certificate.version)
    reason = f"Certificate {before.number}: {before.status} → {after.status} (case {decided.case_ref})."
    await _answer(session, event, decided, after, applied=True, reason=reason)
    return Outcome.applied()


HANDLERS = {DECIDED: apply_certificate_action}
