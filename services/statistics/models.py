"""Every statistics table, gathered for Alembic and for the tables the mechanisms add.

Each domain package keeps its own models; this module only imports them, so the
service's metadata is complete wherever it is used.
"""

from __future__ import annotations

from services.common.audit import AuditLog, audit_table
from services.common.cron import cron_run_table
from services.common.idempotency import idempotency_table
from services.common.outbox import Inbox, Outbox, inbox_table, outbox_table
from services.statistics.aggregates.models import Aggregate
from services.statistics.base import StatisticsModel
from services.statistics.changes.models import AggregateRemoval
from services.statistics.facts.models import (
    BureauDimension,
    CaseFact,
    CertificateStatusFact,
    LeadFact,
    ReconciliationRun,
)
from services.statistics.legal.models import Filing, Review
from services.statistics.oversight.models import Alert, SupervisionNotice
from services.statistics.pilots.models import (
    PilotAcceptanceResult,
    PilotAcceptanceSample,
    PilotProblem,
    PilotRollout,
    PilotSubmission,
)
from services.statistics.reports.models import ReportFigure, StatisticalReport

__all__ = [
    "AUDIT",
    "INBOX",
    "OUTBOX",
    "Aggregate",
    "AggregateRemoval",
    "Alert",
    "BureauDimension",
    "CaseFact",
    "CertificateStatusFact",
    "Filing",
    "LeadFact",
    "PilotAcceptanceResult",
    "PilotAcceptanceSample",
    "PilotProblem",
    "PilotRollout",
    "PilotSubmission",
    "ReconciliationRun",
    "ReportFigure",
    "Review",
    "StatisticalReport",
    "StatisticsModel",
    "SupervisionNotice",
]


AuditEntry = audit_table(StatisticsModel.metadata)
IdempotencyKey = idempotency_table(StatisticsModel.metadata)
# The service's audit chain, here (not in app.py) so workers need no route module.
AUDIT = AuditLog(AuditEntry)
OutboxEvent = outbox_table(StatisticsModel.metadata)
InboxEvent = inbox_table(StatisticsModel.metadata)
OUTBOX = Outbox(OutboxEvent, "statistics")
INBOX = Inbox(InboxEvent)
# Which cron ticks ran (services.common.cron): one claim per job and tick.
CronRun = cron_run_table(StatisticsModel.metadata)
