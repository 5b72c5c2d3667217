"""The statistics service (legal-affairs body, 法制工作机构): facts, aggregates, reviews and filings."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import create_service_app
from services.statistics.aggregates.routes import router as aggregates_router
from services.statistics.config import StatisticsSettings, get_settings
from services.statistics.facts.routes import router as facts_router
from services.statistics.models import AUDIT, INBOX, OUTBOX


def create_app(settings: StatisticsSettings | None = None) -> FastAPI:
    return create_service_app(
        name="statistics",
        title="Statistics service",
        description=(
            "Enforcement statistics kept by the legal-affairs body (法制工作机构): case facts, "
            "aggregates, periodic reports, major-case reviews and filings, oversight alerts."
        ),
        settings=settings or get_settings(),
        audit=AUDIT,
        outbox=OUTBOX,
        inbox=INBOX,
        routers=[aggregates_router, facts_router],
    )
