"""arq jobs of the registry and its WorkerSettings (``arq services.registry.tasks.WorkerSettings``)."""

from __future__ import annotations

from arq import cron

from services.common.jobs import check_audit_chain, worker_settings
from services.registry.config import get_settings
from services.registry.decisions.service import HANDLERS as DECISION_HANDLERS
from services.registry.models import AUDIT, INBOX, OUTBOX

_settings = get_settings()
# The events this service consumes, by type: each handler applies one in the inbox's transaction.
HANDLERS = {**DECISION_HANDLERS}


WorkerSettings = type(
    "WorkerSettings",
    (),
    worker_settings(
        "registry",
        _settings,
        AUDIT,
        outbox=OUTBOX,
        inbox=INBOX,
        handlers=HANDLERS,
        functions=[check_audit_chain],
        cron_jobs=[cron(check_audit_chain, hour={2}, minute={15}, unique=True)],
    ),
)
