"""``make bench``: measured figures, written to docs/benchmarks.md with the command.

Figure 1 — an authenticated read of one bureau (``GET /api/v1/registry/bureaus/{id}``)
through the gateway against the same read sent straight to the registry, in the
same run, under the same concurrent load (wrk), alternating rounds; plus the raw
floor: the same row read with plain asyncpg. Medians over the rounds.

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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--only", choices=("gateway", "import"), help="run one section (default: all of them)"
    )
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    parser.add_argument("--import-rounds", type=int, default=3)
    parser.add_argument("--skip-gateway", action="store_true", help="import: upload straight only")
    args = parser.parse_args()
    if args.only in (None, "import"):
        from tools import bench_import

        bench_import.run(args)
    if args.only == "import":
        return
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
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor(),
    )
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
