"""The enforcement service (dedicated enforcement body, 专职执法机构): leads, cases and decisions."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import create_service_app
from services.enforcement.cases.routes import router as cases_router
from services.enforcement.config import EnforcementSettings, get_settings
from services.enforcement.models import AUDIT, INBOX, OUTBOX


def create_app(settings: EnforcementSettings | None = None) -> FastAPI:
    return create_service_app(
        name="enforcement",
        title="Enforcement service",
        description=(
            "Administrative penalty cases carried by the dedicated enforcement body (专职执法机构): "
            "leads, cases, case officers, evidence, decisions, service and execution."
        ),
        settings=settings or get_settings(),
        routers=[cases_router],
        audit=AUDIT,
        outbox=OUTBOX,
        inbox=INBOX,
    )
