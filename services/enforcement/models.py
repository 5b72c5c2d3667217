"""Enforcement tables. The domain tables arrive with their issues; the audit log is here from the start."""

from __future__ import annotations

from sqlmodel import SQLModel

from services.common.audit import audit_table
from services.common.db import new_model_registry
from services.common.outbox import inbox_table, outbox_table


class EnforcementModel(SQLModel, registry=new_model_registry()):
    pass


AuditEntry = audit_table(EnforcementModel.metadata)
OutboxEvent = outbox_table(EnforcementModel.metadata)
InboxEvent = inbox_table(EnforcementModel.metadata)
