"""A worker built exactly as every service's is (``services.common.jobs.worker_settings``), with
one slow job added, for the drain test:

    python -m tests.deploy.drain_worker
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.common.jobs import worker_settings
from services.common.serve import run_worker_settings
from services.registry.config import get_settings
from services.registry.models import AUDIT


async def slow_job(ctx: dict[str, Any], seconds: float, mark: str) -> str:
    await ctx["redis"].set(f"{mark}:started", "1", ex=300)
    await asyncio.sleep(seconds)
    await ctx["redis"].set(f"{mark}:finished", "1", ex=300)
    return "finished"


WorkerSettings = type(
    "WorkerSettings", (), worker_settings("registry", get_settings(), AUDIT, functions=[slow_job])
)

if __name__ == "__main__":
    run_worker_settings(WorkerSettings)
