"""The `relay` section of ``make bench``: events from commit to consumer.

Concurrent writers commit ``registry.officer.changed`` events through ``Outbox.emit``
(the write load), the registry's worker relays them, the gateway's worker applies them
through its inbox with its real handler. Throughput and latency from each commit to the
consumer's inbox row, once at an offered rate and once as fast as the writers commit.
It runs on databases and queues of its own, beside the other sections' platform.
"""

from __future__ import annotations

import asyncio
import os
import platform as host
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from tools.bench import BENCH_DIR, ENV, PARTS, cpu_seconds
from tools.platform import Platform, create_databases, database_urls, drop_databases, migrate

RELAY_ENV = {
    **ENV,
    "ARQ_QUEUE_PREFIX": "arq:bench-relay:",
    **{
        f"{p.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_bench_relay_{p}"
        for p in PARTS
    },
}


def run_relay(args) -> str:
    urls = database_urls(RELAY_ENV)
    asyncio.run(drop_databases(urls))
    asyncio.run(create_databases(urls))
    migrate(urls)
    running = Platform(env=RELAY_ENV, gateway_port=0, service_ports={}, log_dir=BENCH_DIR / "logs")
    load_average = os.getloadavg()[0]
    runs = []
    try:
        running.start_worker("registry")  # its relay hands the registry's events on
        running.start_worker("gateway")  # it applies registry.officer.changed
        pids = {name: running.processes[f"{name}-worker"].pid for name in ("registry", "gateway")}
        asyncio.run(event_load(urls, 500, 500, args.writers, pids))  # warm up, and wait for the workers
        for label, rate in ((f"paced at {args.rate}/s", args.rate), ("as fast as committed", None)):
            result = asyncio.run(event_load(urls, args.events, rate, args.writers, pids))
            runs.append((label, result))
            print(
                f"{label}: {result['delivered_rate']:.0f} events/s delivered, "
                f"p95 {result['p95']:.0f} ms, p99 {result['p99']:.0f} ms",
                flush=True,
            )
            running.check_alive()
    finally:
        running.stop()
        asyncio.run(drop_databases(urls))
    return relay_results(args, runs, load_average)


async def event_load(
    urls: dict[str, str], count: int, rate: float | None, writers: int, pids: dict[str, int]
) -> dict[str, float]:
    """Commit ``count`` events from ``writers`` concurrent writers (paced at ``rate`` per second,
    or as fast as they go), wait until the consumer applied every one, and measure."""
    from services.common.db import make_engine, make_sessionmaker
    from services.common.event_schemas import OfficerChanged
    from services.registry.app import OUTBOX

    engine = make_engine(urls["registry"], pool_size=writers, max_overflow=0)
    maker = make_sessionmaker(engine)
    gateway = await asyncpg.connect(urls["gateway"].replace("+asyncpg", ""))
    registry = await asyncpg.connect(urls["registry"].replace("+asyncpg", ""))
    committed: dict[Any, float] = {}
    first_officer = int(time.time() * 1000)  # officers no run has used: no event is stale
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    cpu_before["writers"] = cpu_seconds(os.getpid())
    started = time.time()

    async def writer(first: int) -> None:
        for i in range(first, count, writers):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + i / rate - time.time()))
            officer_id = first_officer + i
            async with maker() as session:
                event = await OUTBOX.emit(
                    session,
                    "registry.officer.changed",
                    aggregate_type="officer",
                    aggregate_id=officer_id,
                    aggregate_version=1,
                    bureau_id=8,
                    bureau_path="1.8.",
                    payload=OfficerChanged(
                        officer_id=officer_id,
                        bureau_id=8,
                        bureau_path="1.8.",
                        active=False,
                        body="enforcement",
                    ),
                )
                await session.commit()
            committed[event.id] = time.time()

    try:
        await asyncio.gather(*(writer(w) for w in range(writers)))
        written = time.time()
        cpu_writers = cpu_seconds(os.getpid()) - cpu_before["writers"]
        ids = list(committed)
        query = "SELECT event_id, processed_at FROM inbox_event WHERE event_id = ANY($1::uuid[])"
        deadline = time.time() + 300
        while len(applied := await gateway.fetch(query, ids)) < count:
            if time.time() > deadline:
                raise RuntimeError(f"only {len(applied)} of {count} events applied within 300 s")
            await asyncio.sleep(0.2)
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        confirmed = (
            "SELECT count(*) FROM outbox_event WHERE id = ANY($1::uuid[]) AND delivered_at IS NOT NULL"
        )
        while await registry.fetchval(confirmed, ids) < count:
            if time.time() > deadline:
                raise RuntimeError("deliveries not confirmed within 300 s")
            await asyncio.sleep(0.2)
        all_confirmed = time.time()
    finally:
        await gateway.close()
        await registry.close()
        await engine.dispose()
    latencies = sorted(
        (row["processed_at"].timestamp() - committed[row["event_id"]]) * 1000 for row in applied
    )
    last_applied = max(row["processed_at"].timestamp() for row in applied)
    first_commit = min(committed.values())
    return {
        "events": count,
        "offered": rate or 0.0,
        "commit_rate": count / (written - started),
        "delivered_rate": count / (last_applied - first_commit),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": latencies[-1],
        "confirmed_after": all_confirmed - written,
        "cpu_relay": cpu["registry"] * 1000 / count,
        "cpu_consumer": cpu["gateway"] * 1000 / count,
        "cpu_writers": cpu_writers * 1000 / count,
    }


def percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def relay_results(args, runs: list[tuple[str, dict[str, float]]], load_average: float) -> str:
    command = (
        f'make bench BENCH_ARGS="--only relay"  (python -m tools.bench --only relay --events {args.events} '
        f"--rate {args.rate} --writers {args.writers})"
    )
    rows = "\n".join(
        f"| {label} | {r['events']:.0f} | {r['commit_rate']:.0f} | **{r['delivered_rate']:.0f}** | "
        f"{r['p50']:.0f} | **{r['p95']:.0f}** | {r['p99']:.0f} | {r['max']:.0f} | "
        f"{r['cpu_writers']:.2f} | {r['cpu_relay']:.2f} | {r['cpu_consumer']:.2f} |"
        for label, r in runs
    )
    confirmed = ", ".join(f"{r['confirmed_after']:.1f} s ({label})" for label, r in runs)
    columns = [
        "run",
        "events",
        "committed (events/s)",
        "delivered (events/s)",
        "p50 (ms)",
        "p95 (ms)",
        "p99 (ms)",
        "max (ms)",
        "writers CPU / event (ms)",
        "relay CPU / event (ms)",
        "consumer CPU / event (ms)",
    ]
    header = f"| {' | '.join(columns)} |\n| --- |{' ---: |' * (len(columns) - 1)}"
    when, cpu = datetime.now(UTC), cpu_model()
    section = f"""## Event relay: commit to consumer

Command: `{command}`
Run: {when:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), Python {host.python_version()};
load average {load_average:.1f} when it started (other work on the machine included).
{args.writers} writers commit `registry.officer.changed` events with `Outbox.emit`, one per
transaction (the write load); the registry's worker relays them (LISTEN/NOTIFY, batches of
up to 500, one Redis round trip per batch); the gateway's worker applies each through its
inbox with its real handler (the officers have no login, so the handler looks the login up,
finds none and notes it: the event path, not an account update, is measured).
Latency: from a writer's commit to the consumer's inbox row
(written in the consumer's transaction, which commits right after). Everything — writers,
workers, PostgreSQL, Redis — shares the machine.

{header}
{rows}

Goal: ≥ 1,000 events/s from commit to consumer with p95 < 1 s. Delivered is events over the
time from the first commit to the last event applied. Every event's delivery was then
confirmed by the relay's sweep (`delivered_at`) within {confirmed} of the last commit.
CPU per event is each process's user + system time over the run divided by the events.
"""
    return section


def cpu_model() -> str:
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor(),
    )
