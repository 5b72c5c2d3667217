"""The enforcement service (dedicated enforcement body, 专职执法机构): leads, cases and decisions."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import create_service_app
from services.enforcement.calendar.routes import router as calendar_router
from services.enforcement.cases.routes import router as cases_router
from services.enforcement.catalogue.routes import routers as catalogue_routers
from services.enforcement.config import EnforcementSettings, get_settings
from services.enforcement.documents.routes import router as documents_router
from services.enforcement.models import AUDIT, INBOX, OUTBOX

# Unique constraints two concurrent writers can still hit after the service's own checks.
CONSTRAINT_PROBLEMS = {
    "uq_violation_regulation": (
        "violation-exists",
        "The regulation text already has a violation of that code.",
    ),
    "uq_deadline_rule_set_code": ("rule-set-exists", "A deadline rule set of that code exists already."),
    "uq_document_template_kind_version": (
        "template-version-exists",
        "Another version of the template was stored at the same moment; read it and try again.",
    ),
}


def create_app(settings: EnforcementSettings | None = None) -> FastAPI:
    return create_service_app(
        name="enforcement",
        title="Enforcement service",
        description=(
            "Administrative penalty cases carried by the dedicated enforcement body (专职执法机构): "
            "leads, cases, case officers, evidence, decisions, service and execution."
        ),
        settings=settings or get_settings(),
        routers=[cases_router, *catalogue_routers, calendar_router, documents_router],
        constraint_problems=CONSTRAINT_PROBLEMS,
        audit=AUDIT,
        outbox=OUTBOX,
        inbox=INBOX,
    )
