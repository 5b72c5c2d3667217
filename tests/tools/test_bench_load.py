"""The load bench's own pieces (tools/bench_load.py): the mix, its scaling, the open-loop
schedule and the accounting of latencies and errors, on known inputs and against a small real
HTTP server. No figures of speed are asserted."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiohttp import web

from tools.bench_load import MIX, Tally, drive, percentile, scaled, timeline, totals


def test_the_mix_scales_every_operation_and_names_its_source():
    rates = scaled(MIX, 10)
    assert set(rates) == {op.name for op in MIX}
    for op in MIX:
        assert rates[op.name] == pytest.approx(op.peak_per_second * 10)
        assert op.peak_per_second > 0 and op.why
        assert op.goal_p99_ms is None or op.goal_source
    assert len(rates) == len(MIX)  # names are unique


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(100, 0, -1)]  # 100 … 1, unsorted on purpose
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert percentile([1.0, 2.0, 3.0], 50) == 2


def test_errors_are_counted_as_5xx_or_other_by_what_the_operation_expects():
    pull = Tally(frozenset({304}))
    for status in (304, 304, 200, 404, 503, 0):
        pull.record(status, 1.0)
    assert pull.requests == 6
    assert pull.server_errors == 2  # the 503 and the request that got no answer
    assert pull.other_errors == 2  # 200 is not what a revalidation expects, nor is 404
    read = Tally()
    read.record(200, 2.0)
    read.record(200, 4.0)
    summary = totals({"pull": pull, "read": read})
    assert summary["requests"] == 8
    assert summary["server_share"] == pytest.approx(2 / 8)
    assert summary["other_share"] == pytest.approx(2 / 8)
    assert read.summary(2.0) == {
        "requests": 2, "rate": 1.0, "p50": 2.0, "p99": 4.0, "server_errors": 0, "other_errors": 0
    }  # fmt: skip


def test_the_schedule_is_seeded_ordered_and_near_its_rates():
    plan = timeline({"a": 50.0, "b": 5.0}, 20.0, seed=7)
    assert plan == timeline({"a": 50.0, "b": 5.0}, 20.0, seed=7)
    moments = [t for t, _ in plan]
    assert moments == sorted(moments) and moments[0] >= 0 and moments[-1] < 20.0
    counts = Counter(name for _, name in plan)
    assert 800 < counts["a"] < 1200  # Poisson: 1000 expected, ±6 standard deviations
    assert 50 < counts["b"] < 150


async def test_the_driver_sends_every_planned_request_and_accounts_each_answer():
    async def answer(request: web.Request) -> web.Response:
        status = int(request.match_info["status"])
        if status == 200:
            await asyncio.sleep(0.02)
        return web.Response(status=status, text="x")

    app = web.Application()
    app.router.add_get("/{status}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:

        def sender(status: int):
            async def send(http) -> int:
                async with http.get(f"/{status}") as r:
                    await r.read()
                    return r.status

            return send

        rates = {"ok": 40.0, "broken": 10.0, "refused": 10.0}
        senders = {"ok": sender(200), "broken": sender(503), "refused": sender(404)}
        result = await drive(f"http://127.0.0.1:{port}", senders, rates, 1.5, seed=3)
    finally:
        await runner.cleanup()
    planned = Counter(name for _, name in timeline(rates, 1.5, seed=3))
    assert result.planned == sum(planned.values())
    for name in rates:
        assert result.tallies[name].requests == planned[name]
        assert len(result.tallies[name].latencies) == planned[name]
    assert result.tallies["ok"].statuses == Counter({200: planned["ok"]})
    assert result.tallies["ok"].server_errors == 0
    assert min(result.tallies["ok"].latencies) >= 20  # from the planned moment, the server's wait included
    assert result.tallies["broken"].server_errors == planned["broken"]
    assert result.tallies["refused"].other_errors == planned["refused"]
    assert result.cpu_seconds > 0
