"""The events the statistics service consumes, one handler per type. Each handler runs in the
inbox's transaction and never commits; the domains (facts, legal affairs) do the work."""

from __future__ import annotations

from services.common.outbox import EventHandler
from services.statistics.legal.consumers import case_changed, review_requested

HANDLERS: dict[str, EventHandler] = {
    # The legal-affairs hook only; at merge, the facts' handler and this hook share one handler.
    "enforcement.case.changed": case_changed,
    "enforcement.review.requested": review_requested,
}
