"""arq jobs of the registry and its WorkerSettings (``arq services.registry.tasks.WorkerSettings``)."""

from __future__ import annotations

from arq import cron

from services.common.jobs import check_audit_chain, worker_settings
from services.registry.config import get_settings
from services.registry.models import AUDIT, INBOX, OUTBOX

_settings = get_settings()


WorkerSettings = type(
    "WorkerSettings",
    (),
    worker_settings(
        "registry",
        _settings,
        AUDIT,
        outbox=OUTBOX,
        inbox=INBOX,
        # Handlers of the events this service consumes arrive with its domain code.
        handlers={},
        functions=[check_audit_chain],
        cron_jobs=[cron(check_audit_chain, hour={2}, minute={15}, unique=True)],
    ),
)
