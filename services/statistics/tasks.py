"""arq jobs of the statistics service and its WorkerSettings.

Started by `python -m services.common.serve statistics --worker`.
"""

from __future__ import annotations

from arq import cron

from services.common.jobs import check_audit_chain, worker_settings
from services.statistics.config import get_settings
from services.statistics.consumers import HANDLERS
from services.statistics.coverage import snapshot_coverage
from services.statistics.models import AUDIT, INBOX, OUTBOX
from services.statistics.oversight.cron import OVERSIGHT

WorkerSettings = type(
    "WorkerSettings",
    (),
    worker_settings(
        "statistics",
        get_settings(),
        AUDIT,
        outbox=OUTBOX,
        inbox=INBOX,
        handlers=HANDLERS,
        functions=[check_audit_chain, snapshot_coverage, OVERSIGHT.function()],
        cron_jobs=[
            cron(check_audit_chain, hour={2}, minute={15}, unique=True),
            # Supervision coverage: nightly, the current and previous periods (idempotent upserts).
            cron(snapshot_coverage, hour={1}, minute={40}, unique=True),
            OVERSIGHT.cron(),
        ],
    ),
)
