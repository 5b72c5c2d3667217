"""PostgreSQL restarted under load (stopped as by a crash, then started again): requests are
answered 503 ``database-unavailable`` while it is down, and succeed again once it is back. A
client that retries each write under its Idempotency-Key until it has an answer gets every
write stored exactly once, and each one's event counted once by statistics."""

from __future__ import annotations

import asyncio
import collections

import httpx
import pytest

from tests.conftest import assert_problem
from tests.e2e.test_events import eventually
from tests.factories import unique
from tests.faults.conftest import all_counted, lead_figures, lead_payload, leads_written

pytestmark = pytest.mark.e2e

WRITERS, WRITES = 4, 8
DOWN_SECONDS = 3
DATABASE_UNAVAILABLE = (503, "/problems/database-unavailable")
# What a retry may be answered besides the write: the database away, or the same key's
# earlier attempt still settling.
RETRIED = {DATABASE_UNAVAILABLE, (409, "/problems/idempotency-key-in-progress")}


async def test_writes_retried_through_a_restart_are_stored_once(platform, client, county, postgres):
    marker = unique("faults-pg")
    answers: collections.Counter = collections.Counter()
    stored: list[dict] = []

    async def write(key: str) -> dict:
        """The write, sent again under its key until it is answered 201."""
        while True:
            try:
                response = await client.post(
                    "/api/v1/enforcement/leads",
                    headers={**county.officer.headers, "Idempotency-Key": key},
                    json=lead_payload(county, key),
                )
            except httpx.TransportError as exc:  # not expected: the gateway and services stay up
                raise AssertionError(f"{key}: {exc!r}") from exc
            if response.status_code == 201:
                return response.json()
            answer = (response.status_code, response.json().get("type"))
            assert answer in RETRIED, response.text
            answers[answer] += 1
            await asyncio.sleep(0.2)

    async def writer(n: int) -> None:
        for i in range(WRITES):
            stored.append(await write(f"{marker}-{n}-{i}"))

    writers = [asyncio.create_task(writer(n)) for n in range(WRITERS)]
    try:
        await eventually(lambda: _true(len(stored) >= WRITERS), timeout=60)
        await asyncio.to_thread(postgres.stop, "immediate")
        try:
            await asyncio.sleep(DOWN_SECONDS)
            down = await client.get("/api/v1/enforcement/leads", headers=county.officer.headers)
            assert_problem(down, *DATABASE_UNAVAILABLE)
            assert down.headers["retry-after"] == "5"
        finally:
            await asyncio.to_thread(postgres.start)
        try:
            await asyncio.wait_for(asyncio.gather(*writers), timeout=90)
        except TimeoutError:
            raise AssertionError(f"{len(stored)} writes answered, after {dict(answers)}") from None
    finally:
        for task in writers:
            task.cancel()

    assert answers[DATABASE_UNAVAILABLE] > 0, answers
    ids = await leads_written(postgres, marker)
    assert len(ids) == WRITERS * WRITES
    assert sorted(lead["id"] for lead in stored) == ids
    assert await all_counted(postgres, ids) == {"facts": len(ids), "applied": len(ids)}
    source, counted = await lead_figures(postgres, county)
    assert counted == source


async def _true(value: bool) -> bool:
    return value
