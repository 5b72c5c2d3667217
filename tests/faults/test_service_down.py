"""A service down: the gateway answers 503 naming it, the others go on, and the events its
peers produce for it stay in their outboxes, unconfirmed, until it is back; then each is
applied once."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import assert_problem
from tests.e2e.test_events import eventually
from tests.factories import unique
from tests.faults.conftest import all_counted, counted_leads, lead_events, lead_figures, write_lead

pytestmark = pytest.mark.e2e

LEADS = 5
# Longer than the relay waits before it confirms a delivery (3 s), and a sweep more.
HELD_SECONDS = 5


async def test_the_outbox_holds_a_stopped_consumers_events_until_it_returns(
    platform, client, county, postgres
):
    await asyncio.to_thread(platform.stop, "statistics-worker")
    await asyncio.to_thread(platform.stop, "statistics")
    try:
        down = await client.get("/api/v1/statistics/me", headers=county.officer.headers)
        problem = assert_problem(down, 503, "/problems/service-unavailable")
        assert "statistics" in problem["detail"]
        assert down.headers["retry-after"] == "5"
        # The producer goes on.
        marker = unique("faults-down")
        leads = [await write_lead(client, county, f"{marker}-{i}") for i in range(LEADS)]
        ids = [lead["id"] for lead in leads]

        async def handed_on():
            events = await lead_events(postgres, ids)
            return events if len(events) == LEADS and all(e["enqueued_at"] for e in events) else None

        await eventually(handed_on)
        await asyncio.sleep(HELD_SECONDS)
        events = await lead_events(postgres, ids)
        assert [e["delivered_at"] for e in events] == [None] * LEADS
        assert await counted_leads(postgres, ids) == {"facts": 0}
    finally:
        platform.start_service("statistics")
        platform.start_worker("statistics")
        await asyncio.to_thread(platform.wait_ready, [platform.service_url("statistics")])

    assert (await client.get("/api/v1/statistics/me", headers=county.officer.headers)).status_code == 200
    assert await all_counted(postgres, ids) == {"facts": LEADS, "applied": LEADS}
    source, counted = await lead_figures(postgres, county)
    assert counted == source
