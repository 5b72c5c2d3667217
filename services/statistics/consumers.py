"""The events the statistics service consumes, one handler per type. Each handler runs in the
inbox's transaction and never commits; the domains (facts, legal affairs) do the work."""

from __future__ import annotations

from services.common.outbox import EventHandler
from services.statistics.legal.consumers import review_requested

HANDLERS: dict[str, EventHandler] = {
    "enforcement.review.requested": review_requested,
}
