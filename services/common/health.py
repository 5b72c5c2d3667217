"""Liveness, readiness (database and Redis) and Prometheus metrics endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from services.common.metrics import render_metrics
from services.common.outages import DATABASE, QUEUE, outage_log

CHECK_TIMEOUT_SECONDS = 2.0

# Kept out of the services' API documents; the gateway documents its own.
router = APIRouter(tags=["operations"], include_in_schema=False)


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(coro) -> str:
    try:
        await asyncio.wait_for(coro, CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure makes the check fail; its kind is reported
        return f"unavailable: {type(exc).__name__}"
    return "ok"


async def _database_ok(engine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


@router.get(
    "/readyz",
    summary="Readiness: the database and Redis answer",
    responses={503: {"description": "A dependency is unavailable"}},
)
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    checks: dict[str, Any] = {
        "database": await _check(_database_ok(state.engine)),
        "redis": await _check(state.jobs.ping()),
    }
    # A store that answers again ends the outage its failed requests logged.
    for check, store in (("database", DATABASE), ("redis", QUEUE)):
        if checks[check] == "ok":
            outage_log(request.app).recovered(store)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not-ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
