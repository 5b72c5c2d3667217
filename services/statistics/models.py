"""Every statistics table, gathered for Alembic and for the tables the mechanisms add.

Each domain package keeps its own models; this module only imports them, so the
service's metadata is complete wherever it is used.
"""

from __future__ import annotations

from services.common.audit import AuditLog, audit_table
from services.common.idempotency import idempotency_table
from services.common.outbox import Inbox, Outbox, inbox_table, outbox_table
from services.statistics.aggregates.models import Aggregate
from services.statistics.base import StatisticsModel
from services.statistics.facts.models import (
    BureauDimension,
    CaseFact,
    CertificateStatusFact,
    LeadFact,
    ReconciliationRun,
)
from services.statistics.oversight.models import Alert

__all__ = [
    "AUDIT",
    "INBOX",
    "OUTBOX",
    "Aggregate",
    "Alert",
    "BureauDimension",
    "CaseFact",
    "CertificateStatusFact",
    "LeadFact",
    "ReconciliationRun",
    "StatisticsModel",
]


AuditEntry = audit_table(StatisticsModel.metadata)
IdempotencyKey = idempotency_table(StatisticsModel.metadata)
# The service's audit chain, here (not in app.py) so workers need no route module.
AUDIT = AuditLog(AuditEntry)
OutboxEvent = outbox_table(StatisticsModel.metadata)
InboxEvent = inbox_table(StatisticsModel.metadata)
OUTBOX = Outbox(OutboxEvent, "statistics")
INBOX = Inbox(InboxEvent)
