"""The events statistics takes into facts: leads, cases and certificate status changes.

Each handler runs in the inbox's transaction (never commits); the inbox has already dropped a
duplicate or an older version, and the upsert moves a fact only forward besides, so neither
order nor repetition changes a figure.
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.event_schemas import CaseChanged, CertificateStatusChanged, LeadChanged
from services.common.events import Event
from services.common.outbox import Outcome
from services.statistics.facts import service

LEAD_CHANGED = "enforcement.lead.changed"
CASE_CHANGED = "enforcement.case.changed"
CERTIFICATE_STATUS_CHANGED = "registry.certificate.status_changed"


def _bureau(event: Event) -> tuple[int, str] | None:
    if event.bureau_id is None or not event.bureau_path:
        return None
    return event.bureau_id, event.bureau_path


async def lead_fact(session: AsyncSession, event: Event) -> Outcome:
    try:
        payload = LeadChanged.model_validate(event.payload)
    except ValidationError as exc:
        return Outcome.rejected(f"The payload does not match the catalogue: {exc.errors()[0]['msg']}.")
    bureau = _bureau(event)
    if bureau is None:
        return Outcome.rejected("A lead's event names its bureau.")
    await service.apply_lead(
        session,
        payload,
        version=event.aggregate_version,
        event_id=event.id,
        bureau_id=bureau[0],
        bureau_path=bureau[1],
    )
    return Outcome.applied()


async def case_fact(session: AsyncSession, event: Event) -> Outcome:
    """The case's fact and figures; the legal-affairs hooks are composed after it."""
    try:
        payload = CaseChanged.model_validate(event.payload)
    except ValidationError as exc:
        return Outcome.rejected(f"The payload does not match the catalogue: {exc.errors()[0]['msg']}.")
    bureau = _bureau(event)
    if bureau is None:
        return Outcome.rejected("A case's event names its bureau.")
    await service.apply_case(
        session,
        payload,
        version=event.aggregate_version,
        event_id=event.id,
        bureau_id=bureau[0],
        bureau_path=bureau[1],
    )
    return Outcome.applied()


async def certificate_status_fact(session: AsyncSession, event: Event) -> Outcome:
    try:
        payload = CertificateStatusChanged.model_validate(event.payload)
    except ValidationError as exc:
        return Outcome.rejected(f"The payload does not match the catalogue: {exc.errors()[0]['msg']}.")
    bureau = _bureau(event)
    if bureau is None:
        return Outcome.rejected("A certificate status change names the certificate's bureau.")
    await service.apply_certificate_status(
        session, payload, event_id=event.id, bureau_id=bureau[0], bureau_path=bureau[1]
    )
    return Outcome.applied()


HANDLERS = {
    LEAD_CHANGED: lead_fact,
    CASE_CHANGED: case_fact,
    CERTIFICATE_STATUS_CHANGED: certificate_status_fact,
}
