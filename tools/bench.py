"""``make bench``: measured figures, written to docs/benchmarks.md with the command.

Named sections, each a function registered with ``@section("name")`` that returns
its own ``## `` part of docs/benchmarks.md (``BENCH_ARGS="--only reads,certificates"``
runs some; the default runs all):

* ``gateway`` — an authenticated bureau read through the gateway against the same
  read straight to the registry, alternating rounds, same load.
* ``reads`` — the registry's hot single-bureau read against its floor: a minimal
  FastAPI endpoint on raw asyncpg serving the same row (tools/read_floor.py), run
  by uvicorn like the services, alternating rounds, same load.
* ``certificates`` — a filtered, paginated list at 1,000,000 certificates (loaded
  with COPY) through the gateway.
* ``import`` — a bulk upload of 1,000,000 certificates through the API against a raw
  ``COPY`` of the same rows (tools/bench_import.py).
* ``relay`` — events from commit to consumer under write load (tools/bench_relay.py).
* ``reports`` — a province's monthly statistical report read through the gateway under
  concurrent load, and the same pull revalidated with If-None-Match (tools/bench_reports.py).
* ``aggregates`` — the full rebuild of every aggregate from 1,000,000 case facts against the
  raw ``GROUP BY`` of the same figures (tools/bench_aggregates.py).
* ``freshness`` — a case change visible in ``GET /aggregates`` while cases change under load,
  with the real processes (tools/bench_aggregates.py).
* ``load`` — a province's busiest hour at 10× its rate, the whole mix (registry reads, bulk sync,
  case transitions, leads, statistics pulls) open loop through the gateway (tools/bench_load.py).
* ``draw`` — the draw of an inspection plan from 1,000,000 certificates in three strata
  against a SQL ``ORDER BY md5(seed || id) LIMIT n`` over the same pool (tools/bench_plans.py).

The platform runs on its own databases (cert_bench<pid>_*) and ports, so a running
``make run`` is not disturbed. Adding a section: write one function taking the
:class:`Bench` and returning its markdown, decorated with ``@section("name")``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform as host
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from services.common.settings import REPO_ROOT, VAR_DIR

BENCH_DIR = VAR_DIR / "bench"
PARTS = ("registry", "enforcement", "statistics", "gateway")
ENV = {
    "PLATFORM_ENV": "development",
    "LOG_LEVEL": "WARNING",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "JWKS_PATH": str(BENCH_DIR / "keys" / "jwks.json"),
    "GATEWAY_SIGNING_KEY_DIR": str(BENCH_DIR / "keys" / "signing"),
    "GATEWAY_PRIVATE_KEY_PATH": str(BENCH_DIR / "keys" / "signing-key.pem"),
    # A benchmark drives a few clients far above any real one's rate: every request is still
    # counted (the Redis round trip is part of the gateway's cost per request), none refused.
    "GATEWAY_RATE_LIMIT_REQUESTS": "1000000000",
    "GATEWAY_RATE_LIMIT_WINDOW_SECONDS": "60",
    **{
        # Named per run: benchmarks started from other checkouts drop only their own databases.
        f"{p.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_bench{os.getpid()}_{p}"
        for p in PARTS
    },
}
os.environ.update(ENV)

from gateway.config import GatewaySettings  # noqa: E402
from gateway.keys import active_signing_pem, ensure_keys  # noqa: E402
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
BUREAU_ID = 8  # a provincial pilot unit the seed makes


# --- measuring ------------------------------------------------------------


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


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (from /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values[:8]) - idle) / tick, sum(values[:8]) / tick


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children so far (wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class MachineLoad:
    """What the whole machine did during a section, beside the processes we measure.

    The machine is shared: other engineers' tests and servers (and PostgreSQL serving
    them) run beside the benchmark, so the section says how busy it was.
    """

    ours: dict[str, int]

    def __enter__(self) -> MachineLoad:
        self.started = machine_cpu_seconds()
        self.ours_before = self._ours()
        self.wrk_before = children_cpu_seconds()
        self.load_before = Path("/proc/loadavg").read_text().split()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = machine_cpu_seconds()
        capacity = total - self.started[1]  # CPU seconds all cores could give over the section
        self.busy = (busy - self.started[0]) / capacity
        self.ours_share = (self._ours() - self.ours_before) / capacity
        self.wrk_share = (children_cpu_seconds() - self.wrk_before) / capacity
        self.load_after = Path("/proc/loadavg").read_text().split()[0]

    def _ours(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.ours.values() if Path(f"/proc/{pid}").exists())

    def describe(self) -> str:
        rest = max(self.busy - self.ours_share - self.wrk_share, 0.0)
        return (
            f"Machine during the section: {self.busy:.0%} of its {os.cpu_count()} cores busy — the "
            f"measured servers {self.ours_share:.0%}, wrk {self.wrk_share:.0%}, everything else "
            f"{rest:.0%} (PostgreSQL, for these reads and for other work, and other engineers' "
            f"processes on this shared machine); load average {self.load_before} before, "
            f"{self.load_after} after."
        )


def wrk(
    url: str, token: str, seconds: int, connections: int, *, script: Path | None = None
) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    command += ["-H", f"Authorization: Bearer {token}"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def rotating_paths_script(paths: list[str]) -> Path:
    """A wrk Lua script that sends ``paths`` in turn (query parameters varied per request)."""
    quoted = ",\n  ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in paths)
    script = f"""local paths = {{
  {quoted}
}}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""
    handle = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, dir=BENCH_DIR)  # noqa: SIM115
    handle.write(script)
    handle.close()
    return Path(handle.name)


def median(rounds: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def check_all_2xx(**named: list[dict[str, float]]) -> None:
    for name, rounds in named.items():
        errors = sum(r["non_2xx"] for r in rounds)
        if errors:
            raise SystemExit(f"{errors:.0f} {name} requests were not 2xx; the figures would mean nothing")


def machine_line(args: argparse.Namespace, connections: int) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor(),
    )
    return (
        f"Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), "
        f"Python {host.python_version()};\nload from `wrk -t1 -c{connections}`, {args.rounds} "
        f"alternating rounds of {args.seconds} s; medians. Everything (load generator, servers, "
        "PostgreSQL) shares the same machine."
    )


def command_line(name: str, args: argparse.Namespace, **extra: object) -> str:
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in extra.items())
    return (
        f'make bench BENCH_ARGS="--only {name}"  (python -m tools.bench --only {name} '
        f"--rounds {args.rounds} --seconds {args.seconds}{' ' + flags if flags else ''})"
    )


# --- the running platform ---------------------------------------------------


@dataclass
class Bench:
    """What every section gets: options, the running platform, a token, database URLs."""

    args: argparse.Namespace
    urls: dict[str, str]
    token: str
    running: Platform
    extra_processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def pid(self, name: str) -> int:
        proc = self.extra_processes.get(name) or self.running.processes[name]
        return proc.pid

    def signed(self, bureau_id: int, path: str, roles, officer_id: int | None = None) -> str:
        """A token of an officer (or an administrator) of the bureau, signed with the bench keys."""
        return _signer().issue(
            Principal(
                account_id=f"bench-{officer_id or 'admin'}",
                kind=PrincipalKind.OFFICER,
                bureau_id=bureau_id,
                bureau_path=path,
                roles=frozenset(roles),
                officer_id=officer_id,
            )
        )

    def connections(self, default: int) -> int:
        return self.args.connections or default

    @contextmanager
    def process(self, name: str, args: list[str], env: dict[str, str], port: int) -> Iterator[str]:
        """A helper server of a section (e.g. the raw floor), stopped when the section ends."""
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        log = (BENCH_DIR / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.extra_processes[name] = proc
        url = f"http://127.0.0.1:{port}"
        try:
            self.running.wait_ready([url])
            yield url
        finally:
            proc.terminate()
            proc.wait(15)
            del self.extra_processes[name]
            log.close()


@dataclass
class Section:
    name: str
    run: Callable[[Bench], str]
    workers: bool = False


SECTIONS: dict[str, Section] = {}


def section(name: str, *, workers: bool = False) -> Callable[[Callable[[Bench], str]], Callable]:
    """Register a benchmark section: ``fn(bench) -> markdown`` starting with ``## ``."""

    def register(fn: Callable[[Bench], str]) -> Callable[[Bench], str]:
        SECTIONS[name] = Section(name, fn, workers)
        return fn

    return register


# --- gateway ----------------------------------------------------------------


def _rounds_row(label: str, rounds: list[dict[str, float]], cpu_keys: tuple[str, ...]) -> str:
    cells = [f"{median(rounds, 'rps'):.0f}", f"{median(rounds, 'p50'):.2f}", f"{median(rounds, 'p99'):.2f}"]
    cells += [
        f"{median(rounds, k):.2f}" if k in rounds[0] and median(rounds, k) > 0 else "" for k in cpu_keys
    ]
    return f"| {label} | {' | '.join(cells)} |"


def measured(bench: Bench, url: str, connections: int, pids: dict[str, int], **kw) -> dict[str, float]:
    """A wrk run, with the CPU each named process spent per request during it (ms)."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    result = wrk(url, bench.token, bench.args.seconds, connections, **kw)
    for name, pid in pids.items():
        result[f"cpu_{name}"] = (cpu_seconds(pid) - before[name]) * 1000 / max(result["requests"], 1)
    return result


@section("gateway")
def gateway_section(bench: Bench) -> str:
    """Authenticated bureau read: through the gateway against straight to the registry."""
    args, running = bench.args, bench.running
    connections = bench.connections(32)
    path = f"/api/v1/registry/bureaus/{BUREAU_ID}"
    direct_url, gateway_url = running.service_url("registry") + path, running.gateway_url + path
    wrk(direct_url, bench.token, 3, connections)  # warm both paths
    wrk(gateway_url, bench.token, 3, connections)
    pids = {name: bench.pid(name) for name in ("gateway", "registry")}
    direct, through = [], []
    with MachineLoad(pids) as load:
        for i in range(args.rounds):
            direct.append(measured(bench, direct_url, connections, pids))
            through.append(measured(bench, gateway_url, connections, pids))
            print(f"gateway round {i + 1}: direct {direct[-1]['rps']:.0f}/s, "
                  f"gateway {through[-1]['rps']:.0f}/s", flush=True)  # fmt: skip
    check_all_2xx(direct=direct, gateway=through)
    ratios = [t["rps"] / d["rps"] for d, t in zip(direct, through, strict=True)]
    d_rps, t_rps = median(direct, "rps"), median(through, "rps")
    cpu_keys = ("cpu_registry", "cpu_gateway")
    return f"""## Gateway overhead: authenticated bureau read

Command: `{command_line("gateway", args, connections=connections)}`
{machine_line(args, connections)}
{load.describe()}

| path | throughput (req/s) | p50 (ms) | p99 (ms) | registry CPU / req (ms) | gateway CPU / req (ms) |
| --- | ---: | ---: | ---: | ---: | ---: |
{_rounds_row("straight to the registry", direct, cpu_keys)}
{_rounds_row("through the gateway", through, cpu_keys)}

Gateway / direct throughput: **{t_rps / d_rps:.2f}×** (median of the per-round ratios:
{statistics.median(ratios):.2f}×; rounds: {", ".join(f"{r:.2f}" for r in ratios)}). Goal: ≥ 0.8×.
CPU per request is the process's user + system time over the round divided by the requests
wrk completed: the gateway's own work per forwarded request, apart from the registry's.
"""


# --- reads: the hot read against its floor -----------------------------------


@section("reads")
def reads_section(bench: Bench) -> str:
    """The registry's single-bureau read against a minimal FastAPI + asyncpg endpoint on the same row."""
    args, running = bench.args, bench.running
    connections = bench.connections(16)
    port = free_port()
    floor_env = {"FLOOR_DATABASE_URL": bench.urls["registry"], "FLOOR_POOL_SIZE": "20"}
    uvicorn = ["-m", "uvicorn", "tools.read_floor:create_app", "--factory", "--port", str(port)]
    uvicorn += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    with bench.process("floor", uvicorn, floor_env, port) as floor_base:
        registry_url = running.service_url("registry") + f"/api/v1/registry/bureaus/{BUREAU_ID}"
        floor_url = f"{floor_base}/bureaus/{BUREAU_ID}"
        same = httpx.get(registry_url, headers={"Authorization": f"Bearer {bench.token}"}).json()
        if httpx.get(floor_url).json()["id"] != same["id"]:
            raise SystemExit("the floor does not serve the registry's row")
        wrk(registry_url, bench.token, 3, connections)  # warm both
        wrk(floor_url, bench.token, 3, connections)
        pids = {"registry": bench.pid("registry"), "floor": bench.pid("floor")}
        registry, floor = [], []
        with MachineLoad(pids) as load:
            for i in range(args.rounds):
                registry.append(measured(bench, registry_url, connections, pids))
                floor.append(measured(bench, floor_url, connections, pids))
                print(f"reads round {i + 1}: registry {registry[-1]['rps']:.0f}/s "
                      f"p99 {registry[-1]['p99']:.1f} ms, floor {floor[-1]['rps']:.0f}/s "
                      f"p99 {floor[-1]['p99']:.1f} ms", flush=True)  # fmt: skip
    check_all_2xx(registry=registry, floor=floor)
    ratios = [r["rps"] / f["rps"] for r, f in zip(registry, floor, strict=True)]
    tails = [r["p99"] / r["p50"] for r in registry]
    return f"""## Hot read against its floor: one bureau, registry vs raw asyncpg

Command: `{command_line("reads", args, connections=connections)}`
{machine_line(args, connections)}
{load.describe()}

The floor is tools/read_floor.py: a FastAPI endpoint with no token check and no middleware
that reads the same row (bureau + division name) with plain asyncpg (pool of 20, as the
registry's) and answers it with orjson, run by uvicorn like the services (one worker,
uvloop, httptools). The registry's read verifies the bearer token, checks scope, answers
ETag, request id, metrics and the access log.

| endpoint | throughput (req/s) | p50 (ms) | p99 (ms) | server CPU / req (ms) |
| --- | ---: | ---: | ---: | ---: |
{_rounds_row(f"registry `GET /api/v1/registry/bureaus/{BUREAU_ID}`", registry, ("cpu_registry",))}
{_rounds_row(f"floor `GET /bureaus/{BUREAU_ID}` (FastAPI + asyncpg)", floor, ("cpu_floor",))}

Registry / floor throughput: **{statistics.median(ratios):.2f}×** (median of the per-round ratios;
rounds: {", ".join(f"{r:.2f}" for r in ratios)}). Goal: ≥ 0.7×.
Registry p99 / p50: **{statistics.median(tails):.1f}** (median over rounds). Goal: ≤ 3.
"""


# --- certificates: a filtered list at a million rows, through the gateway -------

# The certificate list's queries (filters named after fields, keyset pages of 50).
CERTIFICATE_QUERIES = [
    "/api/v1/registry/certificates?status=valid&scheme=ccc&limit=50",
    "/api/v1/registry/certificates?status=valid&scheme=ccc&division_code={division}&limit=50",
    "/api/v1/registry/certificates?status=valid&expires_from={soon}&expires_to={later}&limit=50",
    "/api/v1/registry/certificates?scheme=qms&limit=50",
]
# Until the certificate list is served, the same section measures the bureau list.
BUREAU_LIST_QUERIES = [
    "/api/v1/registry/bureaus?limit=50",
    "/api/v1/registry/bureaus?system=quality_supervision&limit=50",
    "/api/v1/registry/bureaus?pilot=provincial&limit=50",
    "/api/v1/registry/bureaus?level=provincial&limit=50",
]


@section("certificates")
def certificates_section(bench: Bench) -> str:
    from tools.bench_data import load_certificates

    args, running = bench.args, bench.running
    connections = bench.connections(16)
    loaded = asyncio.run(load_certificates(bench.urls["registry"], bench.args.certificates))
    probe = httpx.get(
        running.gateway_url + "/api/v1/registry/certificates?limit=1",
        headers={"Authorization": f"Bearer {bench.token}"},
    )
    if probe.status_code == 200:
        target = "the certificate list"
        paths = [q.format(**loaded["query_values"]) for q in CERTIFICATE_QUERIES]
    else:
        target = (
            f"the bureau list (the certificate list answered {probe.status_code}: not served on this "
            "branch yet; the section measures it once it is)"
        )
        paths = BUREAU_LIST_QUERIES
    script = rotating_paths_script(paths)
    url = running.gateway_url + paths[0]
    wrk(url, bench.token, 3, connections, script=script)  # warm
    pids = {"registry": bench.pid("registry"), "gateway": bench.pid("gateway")}
    rounds = []
    with MachineLoad(pids) as load:
        for i in range(args.rounds):
            rounds.append(measured(bench, url, connections, pids, script=script))
            print(f"certificates round {i + 1}: {rounds[-1]['rps']:.0f}/s p50 {rounds[-1]['p50']:.1f} "
                  f"p99 {rounds[-1]['p99']:.1f} ms", flush=True)  # fmt: skip
    script.unlink()
    check_all_2xx(list=rounds)
    p50, p99 = median(rounds, "p50"), median(rounds, "p99")
    queries = "\n".join(f"  - `{p}`" for p in paths)
    return f"""## Certificate list at 1,000,000 certificates, through the gateway

Command: `{command_line("certificates", args, connections=connections, certificates=args.certificates)}`
{machine_line(args, connections)}
{load.describe()}

Data: {loaded["certificates"]:,} certificates ({loaded["valid"]:,} valid, {loaded["ccc"]:,} CCC) of
{loaded["enterprises"]:,} enterprises and {loaded["bodies"]:,} certification bodies, loaded with COPY
in {loaded["seconds"]:.0f} s, then ANALYZE. Measured: {target}; wrk sends these in turn
(tools/bench.py `rotating_paths_script`):
{queries}

| path | throughput (req/s) | p50 (ms) | p99 (ms) | registry CPU / req (ms) | gateway CPU / req (ms) |
| --- | ---: | ---: | ---: | ---: | ---: |
{_rounds_row("through the gateway", rounds, ("cpu_registry", "cpu_gateway"))}

p99 / p50: **{p99 / p50:.1f}** (goal ≤ 3); p99 **{p99:.1f} ms** (goal < 50 ms).
"""


# --- enforcement ----------------------------------------------------------------


@section("cases")
def cases_section(bench: Bench) -> str:
    """The case list at 1,000,000 cases, "overdue in my subtree", through the gateway."""
    from tools.bench_cases import BENCH_OFFICER, CASE_QUERIES, PROVINCE_ID, load_cases

    args, running = bench.args, bench.running
    connections = bench.connections(16)
    province = httpx.get(
        running.service_url("registry") + f"/api/v1/registry/bureaus/{PROVINCE_ID}",
        headers={"Authorization": f"Bearer {bench.token}"},
    ).json()
    provinces = httpx.get(
        running.service_url("registry") + "/api/v1/registry/bureaus",
        params={"level": "provincial", "limit": 100},
        headers={"Authorization": f"Bearer {bench.token}"},
    ).json()["items"]
    loaded = asyncio.run(
        load_cases(bench.urls["enforcement"], args.cases, [(p["id"], p["path"]) for p in provinces])
    )
    token = bench.signed(PROVINCE_ID, province["path"], (Role.ENFORCEMENT,), BENCH_OFFICER)
    year_ago = (datetime.now(UTC).date().replace(day=1) - timedelta(days=365)).isoformat()
    paths = [q.format(year_ago=year_ago) for q in CASE_QUERIES]
    for path in paths:
        probe = httpx.get(running.gateway_url + path, headers={"Authorization": f"Bearer {token}"})
        probe.raise_for_status()
    script = rotating_paths_script(paths)
    url = running.gateway_url + paths[0]
    wrk(url, token, 3, connections, script=script)  # warm
    pids = {"enforcement": bench.pid("enforcement"), "gateway": bench.pid("gateway")}
    rounds = []
    with MachineLoad(pids) as load:
        for i in range(args.rounds):
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            result = wrk(url, token, args.seconds, connections, script=script)
            for name, pid in pids.items():
                result[f"cpu_{name}"] = (cpu_seconds(pid) - before[name]) * 1000 / max(result["requests"], 1)
            rounds.append(result)
            print(f"cases round {i + 1}: {result['rps']:.0f}/s p50 {result['p50']:.1f} "
                  f"p99 {result['p99']:.1f} ms", flush=True)  # fmt: skip
    script.unlink()
    check_all_2xx(list=rounds)
    p50, p99 = median(rounds, "p50"), median(rounds, "p99")
    queries = "\n".join(f"  - `{p}`" for p in paths)
    return f"""## Case list at 1,000,000 cases, "overdue in my subtree", through the gateway

Command: `{command_line("cases", args, connections=connections, cases=args.cases)}`
{machine_line(args, connections)}
{load.describe()}

Data: {loaded["cases"]:,} cases over 100 county bureaus of each of {len(provinces)} provinces,
{loaded["overdue"]:,} past their earliest running deadline, loaded with COPY in
{loaded["seconds"]:.0f} s, then ANALYZE. The caller is an enforcement officer of one province
(its subtree holds about 1/{len(provinces)} of the cases) assigned to {loaded["mine"]:,} cases; wrk
sends these in turn:
{queries}

| path | throughput (req/s) | p50 (ms) | p99 (ms) | enforcement CPU / req (ms) | gateway CPU / req (ms) |
| --- | ---: | ---: | ---: | ---: | ---: |
{_rounds_row("through the gateway", rounds, ("cpu_enforcement", "cpu_gateway"))}

Medians of {args.rounds} rounds: p50 **{p50:.1f} ms**, p99 **{p99:.1f} ms** (goal p99 < 50 ms).
"""


@section("transitions")
def transitions_section(bench: Bench) -> str:
    """A case transition against plain asyncpg UPDATE + INSERT transactions, same concurrency."""
    from tools.bench_cases import prepare_transitions, raw_floor, transition_load

    args, running = bench.args, bench.running
    clients = bench.connections(16)
    prepared = prepare_transitions(bench, clients)
    base = running.service_url("enforcement")
    asyncio.run(transition_load(base, prepared["token"], prepared["case_ids"], 3))  # warm
    ours, floor = [], []
    pids = {"enforcement": bench.pid("enforcement")}
    with MachineLoad(pids) as load:
        for i in range(args.rounds):
            before = cpu_seconds(pids["enforcement"])
            result = asyncio.run(transition_load(base, prepared["token"], prepared["case_ids"], args.seconds))
            result["cpu"] = (
                (cpu_seconds(pids["enforcement"]) - before) * 1000 / max(result["rate"] * args.seconds, 1)
            )
            ours.append(result)
            floor.append(
                asyncio.run(raw_floor(bench.urls["enforcement"], prepared["case_ids"], args.seconds))
            )
            print(f"transitions round {i + 1}: {ours[-1]['rate']:.0f}/s against {floor[-1]['rate']:.0f}/s "
                  f"raw", flush=True)  # fmt: skip
    ratios = [o["rate"] / f["rate"] for o, f in zip(ours, floor, strict=True)]
    ratio = statistics.median(ratios)

    def row(label: str, rounds: list[dict[str, float]], cpu: str) -> str:
        rate = statistics.median(r["rate"] for r in rounds)
        p50 = statistics.median(r["p50"] for r in rounds)
        p99 = statistics.median(r["p99"] for r in rounds)
        return f"| {label} | {rate:.0f} | {p50:.2f} | {p99:.2f} | {cpu} |"

    cpu = f"{statistics.median(r['cpu'] for r in ours):.2f}"
    return f"""## Case transitions under concurrent load, against plain asyncpg transactions

Command: `{command_line("transitions", args, connections=clients)}`
{machine_line(args, clients)}
{load.describe()}

{clients} clients, each taking its own case from investigating to suspended and back
(`POST /api/v1/enforcement/cases/{{id}}/transitions` with If-Match, straight to the enforcement
service: the step's rules, the officer's post duties (registry standing, cached), the deadline
recomputed, a timeline entry, an audit entry, an outbox event, the case read back), against
the floor: the same {clients} clients on an asyncpg pool, each transaction one `UPDATE` of the
case row and one `INSERT` of a timeline row. Rounds alternate; medians of {args.rounds}.

| path | transitions/s | p50 (ms) | p99 (ms) | service CPU / transition (ms) |
| --- | ---: | ---: | ---: | ---: |
{row("the service's transition", ours, cpu)}
{row("asyncpg UPDATE + INSERT", floor, "")}

Throughput ratio (median of the rounds' ratios): **{ratio:.2f}×** the floor (goal ≥ 0.3×);
each round: {", ".join(f"{r:.2f}" for r in ratios)}.
"""


# --- main -------------------------------------------------------------------


@section("import")
def import_section(bench: Bench) -> str:
    """Bulk import through the API against a raw COPY (tools/bench_import.py), on databases of its own."""
    from tools.bench_import import run as run_import

    return run_import(bench.args)


@section("relay")
def relay_section(bench: Bench) -> str:
    """Events from commit to consumer (tools/bench_relay.py), on databases and queues of its own."""
    from tools.bench_relay import run_relay

    return run_relay(bench.args)


@section("draw")
def draw_section(bench: Bench) -> str:
    """An inspection plan's draw against a SQL random pick over the same pool (tools/bench_plans.py)."""
    from tools.bench_plans import run as run_draw

    return run_draw(bench)


@section("reports")
def reports_section(bench: Bench) -> str:
    """A statistical report read through the gateway under load (tools/bench_reports.py)."""
    from tools.bench_reports import run as run_reports

    return run_reports(bench)


@section("aggregates")
def aggregates_section(bench: Bench) -> str:
    """The full rebuild of the aggregates against the raw GROUP BY of the same figures
    (tools/bench_aggregates.py), on the statistics database."""
    from tools.bench_aggregates import markdown, measure

    args = bench.args
    with MachineLoad({}) as load:
        result = asyncio.run(measure(bench.urls["statistics"], args.agg_cases, args.agg_rounds))
    flags = f"--only aggregates --agg-cases {args.agg_cases} --agg-rounds {args.agg_rounds}"
    command = f'make bench BENCH_ARGS="{flags}"'
    conditions = (
        f"Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, Python "
        f"{host.python_version()}; PostgreSQL on the same machine with its default settings.\n"
        + load.describe()
    )
    return markdown(result, command, conditions)


@section("freshness", workers=True)
def freshness_section(bench: Bench) -> str:
    """A case change visible in GET /aggregates under load, with the real processes (relay, workers)."""
    from tools.bench_aggregates import probe_freshness
    from tools.bench_cases import PROVINCE_ID, _transition_cases, prepare_transitions

    args, running = bench.args, bench.running
    clients = bench.connections(16)
    prepared = prepare_transitions(bench, clients)
    admin = {"Authorization": f"Bearer {bench.signed(1, '1.', (Role.ADMIN,))}"}
    registry = running.service_url("registry")
    post = httpx.post(
        f"{registry}/api/v1/registry/bureaus/{PROVINCE_ID}/posts",
        headers=admin,
        json={
            "body": "enforcement",
            "name": f"基准终止{time.time_ns()}",
            "duties": "bench",
            "steps": ["terminate"],
        },
    )
    post.raise_for_status()
    officer = httpx.post(
        f"{registry}/api/v1/registry/officers",
        headers=admin,
        json={"bureau_id": PROVINCE_ID, "body": "enforcement", "name": "基准终止人",
              "post_id": post.json()["id"], "credential_number": f"BENCHT{time.time_ns() % 10**9}"},
    )  # fmt: skip
    officer.raise_for_status()
    province = httpx.get(f"{registry}/api/v1/registry/bureaus/{PROVINCE_ID}", headers=admin).json()
    probes = asyncio.run(_transition_cases(bench.urls["enforcement"], province, args.probes))
    probe_token = "Bearer " + bench.signed(PROVINCE_ID, province["path"], (Role.HEAD,), officer.json()["id"])
    read_token = "Bearer " + bench.signed(PROVINCE_ID, province["path"], (Role.HEAD,))
    pids = {n: bench.pid(n) for n in ("enforcement", "statistics")}
    with MachineLoad(pids) as load:
        result = asyncio.run(
            probe_freshness(
                running.service_url("enforcement"),
                running.service_url("statistics"),
                prepared["token"],
                prepared["case_ids"],
                probe_token,
                read_token,
                probes,
                PROVINCE_ID,
                bench.urls["enforcement"],
            )
        )
    lat = result["latencies"]
    return f"""## Freshness: a case change visible in the aggregates under load

Command: `make bench BENCH_ARGS="--only freshness --probes {args.probes}"` (connections {clients})
Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, Python {host.python_version()};
the platform's real processes (services, arq workers with the outbox relay) as `make run` starts them.
{load.describe()}

Load: {clients} clients each taking its own case to suspended and back as fast as enforcement answers
(every step an `enforcement.case.changed` event the relay hands to the statistics worker, which applies
it to the facts and aggregates): {result["events_per_second"]:.0f} case events a second over the
section. Probe: {args.probes} times, one after the other, a case of the same
province is terminated (`POST …/transitions`, `terminate`) and
`GET /api/v1/statistics/aggregates?bureau_id={PROVINCE_ID}&period=<this month>&measure=cases_closed` is
polled every 20 ms until the province's count has grown; the time runs from the terminate request
being sent (its own latency included).

| probes seen | p50 (s) | p95 (s) | max (s) | not seen within 60 s |
| ---: | ---: | ---: | ---: | ---: |
| {len(lat)} | {result["p50"]:.2f} | **{result["p95"]:.2f}** | {result["max"]:.2f} | {result["missed"]} |

Goal: p95 ≤ 5 s.
"""


@section("load", workers=True)
def load_section(bench: Bench) -> str:
    """A provincial day's peak at 10×, open loop through the gateway (tools/bench_load.py)."""
    from tools.bench_load import run as run_load

    return run_load(bench)


def _signer() -> TokenSigner:
    settings = GatewaySettings()
    return TokenSigner(
        active_signing_pem(settings),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        lifetime_seconds=6 * 3600,
    )


def bench_token() -> str:
    return _signer().issue(
        Principal(
            account_id="bench",
            kind=PrincipalKind.OFFICER,
            bureau_id=1,
            bureau_path="1.",
            roles=frozenset({Role.SUPERVISION}),
        )
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--connections", type=int, default=0, help="wrk connections (default: each section's own)"
    )
    parser.add_argument("--certificates", type=int, default=1_000_000, help="rows for `certificates`")
    parser.add_argument("--draw-count", type=int, default=1000, help="draw: certificates a plan draws")
    parser.add_argument("--cases", type=int, default=1_000_000, help="rows for `cases`")
    parser.add_argument("--import-rows", type=int, default=1_000_000, help="import: rows in the file")
    parser.add_argument("--import-rounds", type=int, default=3, help="import: uploads against COPY")
    parser.add_argument("--skip-gateway", action="store_true", help="import: upload straight only")
    parser.add_argument("--events", type=int, default=20000, help="relay: events per run")
    parser.add_argument("--rate", type=int, default=1000, help="relay: offered events per second, paced run")
    parser.add_argument("--writers", type=int, default=8, help="relay: concurrent committing writers")
    parser.add_argument("--agg-cases", type=int, default=1_000_000, help="aggregates: case facts")
    parser.add_argument("--agg-rounds", type=int, default=3, help="aggregates: rebuild / GROUP BY rounds")
    parser.add_argument("--probes", type=int, default=40, help="freshness: changes timed")
    parser.add_argument("--load-seconds", type=int, default=60, help="load: seconds a round")
    parser.add_argument("--load-rounds", type=int, default=3, help="load: rounds (medians)")
    parser.add_argument("--load-factor", type=float, default=10.0, help="load: × the province's peak")
    parser.add_argument("--load-accounts", type=int, default=8, help="load: officer accounts per body")
    parser.add_argument("--load-certificates", type=int, default=200_000, help="load: certificates")
    parser.add_argument("--load-cases", type=int, default=160_000, help="load: cases (all provinces)")
    parser.add_argument(
        "--load-compare", default="bulk_sync", help="load: operations left out in alternating rounds"
    )
    parser.add_argument("--load-transition-cases", type=int, default=100, help="load: cases stepped")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    args.sections = names
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the load (Debian package 'wrk'): apt-get install -y wrk")
    selected = [SECTIONS[n] for n in args.sections]
    urls = database_urls(ENV)
    ensure_keys(GatewaySettings())
    asyncio.run(drop_databases(urls))
    asyncio.run(create_databases(urls))
    migrate(urls)
    subprocess.run(
        [sys.executable, "-m", "services.registry.seed"],
        check=True,
        env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL,
    )
    running = Platform(
        env=ENV,
        gateway_port=free_port(),
        service_ports={n: free_port() for n in ("registry", "enforcement", "statistics")},
        workers=any(s.workers for s in selected),
        log_dir=BENCH_DIR / "logs",
    )
    bench = Bench(args=args, urls=urls, token=bench_token(), running=running)
    try:
        running.start_services()
        running.wait_ready([running.service_url(n) for n in running.service_ports])
        running.start_gateway()
        running.wait_ready([running.gateway_url])
        for chosen in selected:
            text = chosen.run(bench)
            write_section(text)
            print(text, flush=True)
    finally:
        running.stop()
        asyncio.run(drop_databases(urls))


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
