"""A worker killed with SIGKILL in the middle of its jobs: once it is started again, every event
is applied, none twice; statistics' figures equal the enforcement service's records."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from tests.e2e.test_events import eventually
from tests.factories import unique
from tests.faults.conftest import (
    JOB_TIMEOUT_SECONDS,
    all_counted,
    database,
    lead_events,
    lead_figures,
    write_lead,
)

pytestmark = pytest.mark.e2e

LEADS = 40


async def test_a_worker_killed_mid_job_counts_nothing_twice(platform, client, county, postgres):
    await asyncio.to_thread(platform.stop, "statistics-worker")
    marker = unique("faults-kill")
    leads = await asyncio.gather(*(write_lead(client, county, f"{marker}-{i}") for i in range(LEADS)))
    ids = [lead["id"] for lead in leads]

    async def queued():
        events = await lead_events(postgres, ids)
        return len(events) == LEADS and all(e["enqueued_at"] for e in events)

    await eventually(queued)
    platform.start_worker("statistics")
    worker = platform.processes["statistics-worker"]

    async with database(postgres, "statistics") as conn:  # one connection: polled closely

        async def started():
            return await conn.fetchval(
                "SELECT count(*) FROM lead_fact WHERE lead_id = ANY($1::bigint[])", ids
            )

        at_kill = await eventually(started, timeout=60, interval=0.005)
        os.killpg(worker.pid, signal.SIGKILL)
    await asyncio.to_thread(worker.wait)
    assert worker.returncode == -signal.SIGKILL
    assert at_kill < LEADS, "the worker had done every job before it was killed"

    # Supervision starts it again; a job it was running is taken again once its mark expires.
    counted = await all_counted(postgres, ids, timeout=JOB_TIMEOUT_SECONDS + 60)
    assert counted == {"facts": LEADS, "applied": LEADS}
    source, figure = await lead_figures(postgres, county)
    assert figure == source
