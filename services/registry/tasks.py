"""arq jobs of the registry and its WorkerSettings (``arq services.registry.tasks.WorkerSettings``)."""

from __future__ import annotations

from arq import cron

from services.common.jobs import check_audit_chain, worker_settings
from services.registry.config import get_settings
from services.registry.models import AUDIT

_settings = get_settings()


WorkerSettings = type(
    "WorkerSettings",
    (),
    worker_settings(
        "registry",
        _settings,
        AUDIT,
        functions=[check_audit_chain],
        cron_jobs=[cron(check_audit_chain, hour={2}, minute={15}, unique=True)],
    ),
)
