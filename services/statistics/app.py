"""The statistics service (legal-affairs body, 法制工作机构): facts, aggregates, reviews and filings."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import create_service_app
from services.statistics.aggregates.routes import router as aggregates_router
from services.statistics.changes.routes import router as changes_router
from services.statistics.config import StatisticsSettings, get_settings
from services.statistics.facts.routes import router as facts_router
from services.statistics.legal.routes import router as legal_router
from services.statistics.models import AUDIT, INBOX, OUTBOX
from services.statistics.oversight.routes import router as oversight_router
from services.statistics.pilots.routes import router as pilots_router
from services.statistics.reports.routes import router as reports_router

# Unique keys two concurrent writers can still hit after the service's own checks.
CONSTRAINT_PROBLEMS = {
    "uq_pilot_submission_revision": (
        "submission-conflict",
        "Another submission of this milestone was recorded at the same time; read it and resubmit.",
    ),
    "pk_pilot_rollout": (
        "rollout-conflict",
        "This bureau's roll-out was recorded at the same time; read it and correct it with If-Match.",
    ),
    "ck_statistical_report_frozen": ("report-submitted", "A submitted report is frozen."),
    "uq_statistical_report_draft": ("report-draft-exists", "The bureau has a draft for the period."),
}


def create_app(settings: StatisticsSettings | None = None) -> FastAPI:
    return create_service_app(
        name="statistics",
        title="Statistics service",
        description=(
            "Enforcement statistics kept by the legal-affairs body (法制工作机构): case facts, "
            "aggregates, periodic reports, major-case reviews and filings, oversight alerts."
        ),
        settings=settings or get_settings(),
        routers=[
            aggregates_router,
            reports_router,
            changes_router,
            legal_router,
            oversight_router,
            facts_router,
            pilots_router,
        ],
        constraint_problems=CONSTRAINT_PROBLEMS,
        audit=AUDIT,
        outbox=OUTBOX,
        inbox=INBOX,
    )
