"""Every enforcement table, gathered for Alembic and for the tables the mechanisms add.

Each domain package keeps its own models; this module only imports them, so the
service's metadata is complete wherever it is used.
"""

from __future__ import annotations

from services.common.audit import AuditLog, audit_table
from services.common.idempotency import idempotency_table
from services.common.outbox import Inbox, Outbox, inbox_table, outbox_table
from services.enforcement.base import EnforcementModel
from services.enforcement.calendar.models import (
    CalendarDay,
    CalendarYear,
    DeadlineRule,
    DeadlineRuleSet,
)
from services.enforcement.cases.models import (
    BureauDocumentPrefix,
    Case,
    CaseHearing,
    CaseNumberCounter,
    CaseOfficer,
    CaseSubject,
    Evidence,
    ExcludedInterval,
    Lead,
    Payment,
    PenaltyItem,
    ProcedureStep,
)
from services.enforcement.catalogue.models import PenaltyRule, PenaltyThreshold, Violation
from services.enforcement.documents.models import DocumentTemplate

__all__ = [
    "AUDIT",
    "INBOX",
    "OUTBOX",
    "BureauDocumentPrefix",
    "CalendarDay",
    "CalendarYear",
    "Case",
    "CaseHearing",
    "CaseNumberCounter",
    "CaseOfficer",
    "CaseSubject",
    "DeadlineRule",
    "DeadlineRuleSet",
    "DocumentTemplate",
    "EnforcementModel",
    "Evidence",
    "ExcludedInterval",
    "Lead",
    "Payment",
    "PenaltyItem",
    "PenaltyRule",
    "PenaltyThreshold",
    "ProcedureStep",
    "Violation",
]


AuditEntry = audit_table(EnforcementModel.metadata)
IdempotencyKey = idempotency_table(EnforcementModel.metadata)
# The service's audit chain, here (not in app.py) so workers need no route module.
AUDIT = AuditLog(AuditEntry)
OutboxEvent = outbox_table(EnforcementModel.metadata)
InboxEvent = inbox_table(EnforcementModel.metadata)
OUTBOX = Outbox(OutboxEvent, "enforcement")
INBOX = Inbox(InboxEvent)
