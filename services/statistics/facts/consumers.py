"""The events statistics takes into facts: leads, cases and certificate status changes.

Each handler runs in the inbox's transaction (never commits); the inbox has already dropped a
duplicate or an older version, and the upsert moves a fact only forward besides, so neither
order nor repetition changes a figure.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.event_schemas import CaseChanged, CertificateStatusChanged, LeadChanged
from services.common.events import Event
from services.common.outbox import EventHandler, Outcome, every_version, parse_payload
from services.statistics.facts import service

LEAD_CHANGED = "enforcement.lead.changed"
CASE_CHANGED = "enforcement.case.changed"
CERTIFICATE_STATUS_CHANGED = "registry.certificate.status_changed"

# Applies one fact: the session, the event, its payload, then the bureau's id and path.
_Apply = Callable[[AsyncSession, Event, Any, int, str], Awaitable[None]]


def _fact(model: type[BaseModel], no_bureau: str) -> Callable[[_Apply], EventHandler]:
    """The handler around one fact's ``apply``: a payload that does not match ``model`` is
    rejected, so is an envelope that names no bureau (with ``no_bureau``); else it is applied."""

    def decorate(apply: _Apply) -> EventHandler:
        @functools.wraps(apply)
        async def handler(session: AsyncSession, event: Event) -> Outcome:
            payload = parse_payload(model, event)
            if isinstance(payload, Outcome):
                return payload
            if event.bureau_id is None or not event.bureau_path:
                return Outcome.rejected(no_bureau)
            await apply(session, event, payload, event.bureau_id, event.bureau_path)
            return Outcome.applied()

        return handler

    return decorate


@_fact(LeadChanged, "A lead's event names its bureau.")
async def lead_fact(
    session: AsyncSession, event: Event, payload: LeadChanged, bureau_id: int, bureau_path: str
) -> None:
    await service.apply_lead(
        session,
        payload,
        version=event.aggregate_version,
        event_id=event.id,
        bureau_id=bureau_id,
        bureau_path=bureau_path,
    )


@_fact(CaseChanged, "A case's event names its bureau.")
async def case_fact(
    session: AsyncSession, event: Event, payload: CaseChanged, bureau_id: int, bureau_path: str
) -> None:
    """The case's fact and figures; the legal-affairs hooks are composed after it."""
    await service.apply_case(
        session,
        payload,
        version=event.aggregate_version,
        event_id=event.id,
        bureau_id=bureau_id,
        bureau_path=bureau_path,
    )


# Each status change is a fact of its own (a suspension, then a revocation): one that arrives
# after a later change of the same certificate still counts.
@every_version
@_fact(CertificateStatusChanged, "A certificate status change names the certificate's bureau.")
async def certificate_status_fact(
    session: AsyncSession, event: Event, payload: CertificateStatusChanged, bureau_id: int, bureau_path: str
) -> None:
    await service.apply_certificate_status(
        session, payload, event_id=event.id, bureau_id=bureau_id, bureau_path=bureau_path
    )


HANDLERS = {
    LEAD_CHANGED: lead_fact,
    CASE_CHANGED: case_fact,
    CERTIFICATE_STATUS_CHANGED: certificate_status_fact,
}
