"""The events the statistics service consumes, one handler per type. Each handler runs in the
inbox's transaction and never commits; the domains (facts, legal affairs) do the work."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.event_schemas import CaseChanged
from services.common.events import Event
from services.common.outbox import EventHandler, Outcome
from services.statistics.facts.consumers import CASE_CHANGED, case_fact
from services.statistics.facts.consumers import HANDLERS as FACT_HANDLERS
from services.statistics.legal import service as legal_service
from services.statistics.legal.consumers import review_requested


async def case_changed(session: AsyncSession, event: Event) -> Outcome:
    """The case's fact and figures first, then the legal-affairs hook (a closed major case owes
    its filing), in the same transaction."""
    outcome = await case_fact(session, event)
    if outcome == Outcome.applied():
        await legal_service.on_case_changed(session, event, CaseChanged.model_validate(event.payload))
    return outcome


HANDLERS: dict[str, EventHandler] = {
    **FACT_HANDLERS,
    CASE_CHANGED: case_changed,
    "enforcement.review.requested": review_requested,
}
