"""``make bench``: measured figures, written to docs/benchmarks.md with the command.

``--only gateway`` or ``--only relay`` runs one of them (``make bench BENCH_ARGS="--only relay"``).

Figure 1 (gateway) — an authenticated read of one bureau (``GET /api/v1/registry/bureaus/{id}``)
through the gateway against the same read sent straight to the registry, in the
same run, under the same concurrent load (wrk), alternating rounds; plus the raw
floor: the same row read with plain asyncpg. Medians over the rounds.

Figure 2 (relay) — events from commit to consumer: concurrent writers commit
``registry.officer.changed`` events through ``Outbox.emit`` (the write load), the
registry's worker relays them, the gateway's worker applies them through its inbox
with its real handler. Throughput and latency from each commit to the consumer's
inbox row, once at an offered rate and once as fast as the writers commit.

The platform runs on its own databases (cert_bench_*) and ports, so a running
``make run`` is not disturbed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform as host
import re
import shutil
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from services.common.settings import REPO_ROOT, VAR_DIR

BENCH_DIR = VAR_DIR / "bench"
PARTS = ("registry", "enforcement", "statistics", "gateway")
ENV = {
    "PLATFORM_ENV": "development",
    "LOG_LEVEL": "WARNING",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "JWKS_PATH": str(BENCH_DIR / "keys" / "jwks.json"),
    "GATEWAY_PRIVATE_KEY_PATH": str(BENCH_DIR / "keys" / "signing-key.pem"),
    **{
        f"{p.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_bench_{p}"
        for p in PARTS
    },
}
os.environ.update(ENV)

from gateway.config import GatewaySettings  # noqa: E402
from gateway.keys import ensure_keys  # noqa: E402
from services.common.auth import Principal, PrincipalKind, Role, TokenSigner  # noqa: E402
from tools.platform import (  # noqa: E402
    Platform,
    create_databases,
    database_urls,
    drop_databases,
    free_port,
    migrate,
)

RESULTS = REPO_ROOT / "docs" / "benchmarks.md"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(output: str) -> dict[str, float]:
    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            raise RuntimeError(f"wrk printed no {label}% latency:\n{output}")
        return float(match[1]) * _UNITS[match[2]]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if not rps:
        raise RuntimeError(f"wrk printed no throughput:\n{output}")
    return {
        "rps": float(rps[1]),
        "p50": latency("50"),
        "p99": latency("99"),
        "non_2xx": float(errors[1]) if errors else 0.0,
        "requests": float(total[1]) if total else 0.0,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(url: str, token: str, seconds: int, connections: int, pids: dict[str, int]) -> dict[str, float]:
    """A wrk run, with the CPU each named process spent per request during it (ms)."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    result = wrk(url, token, seconds, connections)
    for name, pid in pids.items():
        result[f"cpu_{name}"] = (cpu_seconds(pid) - before[name]) * 1000 / max(result["requests"], 1)
    return result


def wrk(url: str, token: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


async def asyncpg_floor(dsn: str, bureau_id: int, seconds: float, concurrency: int) -> float:
    """Reads per second of the same row with plain asyncpg: the floor under our stack."""
    pool = await asyncpg.create_pool(dsn.replace("+asyncpg", ""), min_size=concurrency, max_size=concurrency)
    sql = (
        "SELECT b.*, d.name AS division_name FROM bureau b LEFT JOIN division d "
        "ON d.code = b.division_code WHERE b.id = $1"
    )
    count = 0
    deadline = time.perf_counter() + seconds

    async def reader() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            async with pool.acquire() as conn:
                await conn.fetchrow(sql, bureau_id)
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(reader() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return count / elapsed


def median(rounds: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("gateway", "relay"), help="run one benchmark (default: all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--events", type=int, default=20000, help="relay: events per run")
    parser.add_argument("--rate", type=int, default=1000, help="relay: offered events per second, paced run")
    parser.add_argument("--writers", type=int, default=8, help="relay: concurrent committing writers")
    args = parser.parse_args()
    if args.only in (None, "gateway"):
        bench_gateway(args)
    if args.only in (None, "relay"):
        bench_relay(args)


def bench_gateway(args) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the load (Debian package 'wrk'): apt-get install -y wrk")

    urls = database_urls(ENV)
    ensure_keys(GatewaySettings())
    asyncio.run(drop_databases(urls))
    asyncio.run(create_databases(urls))
    migrate(urls)
    subprocess.run(
        [os.sys.executable, "-m", "services.registry.seed"],
        check=True,
        env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL,
    )
    settings = GatewaySettings()
    signer = TokenSigner(
        settings.private_key_path.read_bytes(),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        lifetime_seconds=3600,
    )
    token = signer.issue(
        Principal(
            account_id="bench",
            kind=PrincipalKind.OFFICER,
            bureau_id=1,
            bureau_path="1.",
            roles=frozenset({Role.SUPERVISION}),
        )
    )
    bureau_id = 8
    path = f"/api/v1/registry/bureaus/{bureau_id}"

    running = Platform(
        env=ENV,
        gateway_port=free_port(),
        service_ports={n: free_port() for n in ("registry", "enforcement", "statistics")},
        workers=False,
        log_dir=BENCH_DIR / "logs",
    )
    try:
        running.start_services()
        running.wait_ready([running.service_url(n) for n in running.service_ports])
        running.start_gateway()
        running.wait_ready([running.gateway_url])
        direct_url, gateway_url = running.service_url("registry") + path, running.gateway_url + path
        wrk(direct_url, token, 3, args.connections)  # warm both paths
        wrk(gateway_url, token, 3, args.connections)
        direct, through, floor = [], [], []
        pids = {name: running.processes[name].pid for name in ("gateway", "registry")}
        for i in range(args.rounds):
            direct.append(measured(direct_url, token, args.seconds, args.connections, pids))
            through.append(measured(gateway_url, token, args.seconds, args.connections, pids))
            floor.append(
                asyncio.run(
                    asyncpg_floor(urls["registry"], bureau_id, min(args.seconds, 5), args.connections)
                )
            )
            print(
                f"round {i + 1}: direct {direct[-1]['rps']:.0f}/s, gateway {through[-1]['rps']:.0f}/s, "
                f"asyncpg {floor[-1]:.0f}/s",
                flush=True,
            )
    finally:
        running.stop()
        asyncio.run(drop_databases(urls))

    errors = sum(r["non_2xx"] for r in direct + through)
    if errors:
        raise SystemExit(f"{errors:.0f} requests were not 2xx; the figures would mean nothing")
    ratios = [t["rps"] / d["rps"] for d, t in zip(direct, through, strict=True)]
    write_results(args, direct, through, floor, ratios)


def row(label: str, rounds: list[dict[str, float]]) -> str:
    cells = [f"{median(rounds, 'rps'):.0f}"] + [
        f"{median(rounds, key):.2f}" if key in rounds[0] and median(rounds, key) > 0 else ""
        for key in ("p50", "p99", "cpu_registry", "cpu_gateway")
    ]
    return f"| {label} | {' | '.join(cells)} |"


def write_results(args, direct, through, floor, ratios) -> None:
    command = (
        f"make bench  (python -m tools.bench --rounds {args.rounds} --seconds {args.seconds} "
        f"--connections {args.connections})"
    )
    cpu = cpu_model()
    d_rps, t_rps = median(direct, "rps"), median(through, "rps")
    section = f"""## Gateway overhead: authenticated bureau read

Command: `{command}`
Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), Python {host.python_version()};
load from `wrk -t1 -c{args.connections}`, {args.rounds} alternating rounds of {args.seconds} s; medians.
Everything (load generator, gateway, registry, PostgreSQL) shares the same machine.

| path | throughput (req/s) | p50 (ms) | p99 (ms) | registry CPU / req (ms) | gateway CPU / req (ms) |
| --- | ---: | ---: | ---: | ---: | ---: |
{row("straight to the registry", direct)}
{row("through the gateway", through)}
| raw floor: plain asyncpg, same row, {args.connections} readers | {statistics.median(floor):.0f} | | | | |

Gateway / direct throughput: **{t_rps / d_rps:.2f}×** (median of the per-round ratios:
{statistics.median(ratios):.2f}×; rounds: {", ".join(f"{r:.2f}" for r in ratios)}). Goal: ≥ 0.8×.
Registry / raw asyncpg floor: {d_rps / statistics.median(floor):.2f}×.
CPU per request is the process's user + system time over the round divided by the requests
wrk completed: the gateway's own work per forwarded request, apart from the registry's.
"""
    write_section(section)
    print(section)


# --- relay: events from commit to consumer ----------------------------------------


# Databases and queues of its own, so the other benchmarks can run beside it.
RELAY_ENV = {
    **ENV,
    "ARQ_QUEUE_PREFIX": "arq:bench-relay:",
    **{
        f"{p.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_bench_relay_{p}"
        for p in PARTS
    },
}


def bench_relay(args) -> None:
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
    write_relay_results(args, runs, load_average)


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


def write_relay_results(args, runs: list[tuple[str, dict[str, float]]], load_average: float) -> None:
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
    write_section(section)
    print(section)


def cpu_model() -> str:
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor(),
    )


def write_section(section: str) -> None:
    """Replace this benchmark's section in docs/benchmarks.md, keeping any others."""
    header = (
        "# Benchmarks\n\nFigures measured by `make bench`; "
        "each section names the command that produced it.\n\n"
    )
    text = RESULTS.read_text() if RESULTS.exists() else header
    title = section.splitlines()[0]
    parts = re.split(r"(?m)^(?=## )", text)
    kept = [p for p in parts if not p.startswith(title)]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("".join(kept).rstrip() + "\n\n" + section)


if __name__ == "__main__":
    main()
