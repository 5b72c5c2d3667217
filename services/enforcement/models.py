"""Every enforcement table, gathered for Alembic and for the tables the mechanisms add.

Each domain package keeps its own models; this module only imports them, so the
service's metadata is complete wherever it is used.
"""

from __future__ import annotations

from services.common.audit import AuditLog, audit_table
from services.common.idempotency import idempotency_table
from services.common.outbox import Inbox, Outbox, inbox_table, outbox_table
from services.enforcement.base import EnforcementModel
from services.enforcement.calendar.models import (  # noqa: F401  (calendar/: days and deadline rules)
    CalendarDay,
    CalendarYear,
    DeadlineRule,
    DeadlineRuleSet,
)

AuditEntry = audit_table(EnforcementModel.metadata)
IdempotencyKey = idempotency_table(EnforcementModel.metadata)
# The service's audit chain, here (not in app.py) so workers need no route module.
AUDIT = AuditLog(AuditEntry)
OutboxEvent = outbox_table(EnforcementModel.metadata)
InboxEvent = inbox_table(EnforcementModel.metadata)
OUTBOX = Outbox(OutboxEvent, "enforcement")
INBOX = Inbox(InboxEvent)
