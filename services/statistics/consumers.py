"""The events the statistics service consumes, one handler per type. Each handler runs in the
inbox's transaction and never commits; the domains (facts, legal affairs) do the work."""

from __future__ import annotations

from services.common.outbox import EventHandler
from services.statistics.facts.consumers import HANDLERS as FACT_HANDLERS

HANDLERS: dict[str, EventHandler] = {**FACT_HANDLERS}
