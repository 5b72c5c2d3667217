"""arq jobs of the statistics service and its WorkerSettings.

Started by `python -m services.common.serve statistics --worker`.
"""

from __future__ import annotations

from typing import Any

from arq import cron

from services.common.jobs import check_audit_chain, worker_settings
from services.statistics.aggregates.jobs import FUNCTIONS as AGGREGATE_FUNCTIONS
from services.statistics.aggregates.jobs import (
    rebuild_aggregates,
    reconcile_facts,
    refresh_bureaus,
    refresh_current_periods,
)
from services.statistics.config import get_settings
from services.statistics.consumers import HANDLERS
from services.statistics.coverage import snapshot_coverage
from services.statistics.facts import bureaus
from services.statistics.models import AUDIT, INBOX, OUTBOX
from services.statistics.oversight.cron import OVERSIGHT

_settings = worker_settings(
    "statistics",
    get_settings(),
    AUDIT,
    outbox=OUTBOX,
    inbox=INBOX,
    handlers=HANDLERS,
    functions=[check_audit_chain, *AGGREGATE_FUNCTIONS, snapshot_coverage, OVERSIGHT.function()],
    cron_jobs=[
        cron(check_audit_chain, hour={2}, minute={15}, unique=True),
        # The running periods' stocks move with the day: hourly, so a missed tick is caught up.
        cron(refresh_current_periods, minute={1}, unique=True, run_at_startup=True),
        cron(reconcile_facts, hour={3}, minute={30}, unique=True),
        # Nightly, every figure from the facts: heals what no delta carried (a fact changed by hand).
        cron(rebuild_aggregates, hour={4}, minute={10}, unique=True),
        cron(refresh_bureaus, minute=set(range(0, 60, 5)), unique=True),
        # Supervision coverage: nightly, the current and previous periods (idempotent upserts).
        cron(snapshot_coverage, hour={1}, minute={40}, unique=True),
        OVERSIGHT.cron(),
    ],
)
_startup = _settings["on_startup"]


async def _on_startup(ctx: dict[str, Any]) -> None:
    await _startup(ctx)
    bureaus.use_services(ctx["services"])  # the fact handlers read bureaus from the registry


_settings["on_startup"] = _on_startup
WorkerSettings = type("WorkerSettings", (), _settings)
