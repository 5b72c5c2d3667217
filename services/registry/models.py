"""Every registry table, gathered for Alembic and for the tables the mechanisms add.

Each domain package keeps its own models; this module only imports them, so the
registry's metadata is complete wherever it is used.
"""

from __future__ import annotations

from services.common.audit import AuditLog, audit_table
from services.common.idempotency import idempotency_table
from services.common.outbox import Inbox, Outbox, inbox_table, outbox_table
from services.registry.base import RegistryModel
from services.registry.certification.models import (
    Auditor,
    AuditorAffiliation,
    Certificate,
    CertificateAuditor,
    CertificateProduct,
    CertificateStatusChange,
    CertificationActivity,
    CertificationBody,
)
from services.registry.imports.models import ImportBatch, ImportRowError
from services.registry.inspections.models import Inspection, InspectionOfficer
from services.registry.network.models import (
    NATIONAL_BUREAU_ID,
    Bureau,
    BureauBody,
    Division,
    Officer,
    PilotDesignation,
    Post,
)
from services.registry.plans.models import (
    InspectionPlan,
    InspectionTask,
    OfficerConflict,
    PlanOfficer,
    PlanPoolMember,
    PlanRecusal,
    TaskOfficer,
)
from services.registry.subjects.models import Enterprise, Product

__all__ = [
    "AUDIT",
    "NATIONAL_BUREAU_ID",
    "AuditEntry",
    "Auditor",
    "AuditorAffiliation",
    "Bureau",
    "BureauBody",
    "Certificate",
    "CertificateAuditor",
    "CertificateProduct",
    "CertificateStatusChange",
    "CertificationActivity",
    "CertificationBody",
    "Division",
    "Enterprise",
    "IdempotencyKey",
    "ImportBatch",
    "ImportRowError",
    "Inspection",
    "InspectionOfficer",
    "InspectionPlan",
    "InspectionTask",
    "Officer",
    "OfficerConflict",
    "PilotDesignation",
    "PlanOfficer",
    "PlanPoolMember",
    "PlanRecusal",
    "Post",
    "Product",
    "RegistryModel",
    "TaskOfficer",
]

AuditEntry = audit_table(RegistryModel.metadata)
IdempotencyKey = idempotency_table(RegistryModel.metadata)
# The service's audit chain, here (not in app.py) so workers need no route module.
AUDIT = AuditLog(AuditEntry)
OutboxEvent = outbox_table(RegistryModel.metadata)
InboxEvent = inbox_table(RegistryModel.metadata)
OUTBOX = Outbox(OutboxEvent, "registry")
INBOX = Inbox(InboxEvent)
