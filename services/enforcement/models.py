"""Enforcement tables. The domain tables arrive with their issues; the audit log is here from the start."""

from __future__ import annotations

from sqlmodel import SQLModel

from services.common.audit import AuditLog, audit_table
from services.common.db import new_model_registry
from services.common.idempotency import idempotency_table


class EnforcementModel(SQLModel, registry=new_model_registry()):
    pass


AuditEntry = audit_table(EnforcementModel.metadata)
IdempotencyKey = idempotency_table(EnforcementModel.metadata)
# The service\'s audit chain, here (not in app.py) so workers need no route module.
AUDIT = AuditLog(AuditEntry)
