"""arq jobs of the enforcement service and its WorkerSettings.

Started by `python -m services.common.serve enforcement --worker`.
"""

from __future__ import annotations

from arq import cron

from services.common.jobs import check_audit_chain, worker_settings
from services.enforcement.cases.consumers import HANDLERS
from services.enforcement.config import get_settings
from services.enforcement.models import AUDIT, INBOX, OUTBOX

WorkerSettings = type(
    "WorkerSettings",
    (),
    worker_settings(
        "enforcement",
        get_settings(),
        AUDIT,
        outbox=OUTBOX,
        inbox=INBOX,
        handlers=HANDLERS,
        functions=[check_audit_chain],
        cron_jobs=[cron(check_audit_chain, hour={2}, minute={15}, unique=True)],
    ),
)
