"""Redis restarted (it keeps nothing: every queued job and result is gone): no event is lost.
Events committed while Redis is away wait in the outbox; the relay hands them on once it is
back, and gives again the jobs Redis forgot; the consumer applies each once."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.test_events import eventually
from tests.factories import unique
from tests.faults.conftest import all_counted, direct, lead_events, lead_figures, lead_payload, write_lead

pytestmark = pytest.mark.e2e

BEFORE, DURING = 4, 5
AWAY_SECONDS = 3


async def test_events_committed_while_redis_is_away_reach_the_consumer_once(
    platform, client, county, postgres, redis_server
):
    marker = unique("faults-redis")
    before = [await write_lead(client, county, f"{marker}-before-{i}") for i in range(BEFORE)]
    redis_server.stop(kill=True)
    try:
        # Straight to the service: what the gateway makes of Redis away is not the question here.
        async with direct(platform, "enforcement") as enforcement:
            during = []
            for i in range(DURING):
                response = await enforcement.post(
                    "/api/v1/enforcement/leads",
                    headers=county.officer.headers,
                    json=lead_payload(county, f"{marker}-during-{i}"),
                )
                assert response.status_code == 201, response.text
                during.append(response.json())
        await asyncio.sleep(AWAY_SECONDS)
        # Nothing could be handed on: every event written meanwhile waits in the outbox.
        waiting = await lead_events(postgres, [lead["id"] for lead in during])
        assert [e["enqueued_at"] for e in waiting] == [None] * DURING
    finally:
        redis_server.start()

    ids = [lead["id"] for lead in before + during]
    assert await all_counted(postgres, ids, timeout=90) == {
        "facts": BEFORE + DURING,
        "applied": BEFORE + DURING,
    }
    source, counted = await lead_figures(postgres, county)
    assert counted == source

    async def workers_back():
        return all(
            platform.processes[f"{p}-worker"].poll() is None
            for p in ("registry", "enforcement", "statistics")
        )

    await eventually(workers_back)
