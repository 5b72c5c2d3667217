"""The oversight cron: once a day (06:00 Asia/Shanghai, before the working day) every detector
runs for that day; arq wakes the job every quarter hour and at worker startup, and the job runs
the ticks it owes — the missed ones included — each claimed once (services.common.cron)."""

from __future__ import annotations

from datetime import time, timedelta

from services.common.cron import Daily, ScheduledJob
from services.statistics.config import get_settings
from services.statistics.models import CronRun
from services.statistics.oversight.detectors import Detector, detectors_body

OVERSIGHT_JOB = "oversight"
OVERSIGHT_SCHEDULE = Daily(time(6, 0))


def oversight_job(name: str = OVERSIGHT_JOB, detectors: list[Detector] | None = None) -> ScheduledJob:
    """The oversight job (another ``name`` or ``detectors`` for tests: the ticks are per name)."""
    settings = get_settings()
    return ScheduledJob(
        name,
        OVERSIGHT_SCHEDULE,
        detectors_body(detectors),
        CronRun,
        lease=timedelta(seconds=settings.oversight_lease_seconds),
        max_catch_up=settings.oversight_catch_up_ticks,
    )


OVERSIGHT = oversight_job()
