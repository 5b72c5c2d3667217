"""The `reports` section of ``make bench``: a province's monthly statistical report
(认证执法统计报表) pulled through the gateway under concurrent load, p50 and p99.

* Data (statistics database, COPY): a provincial unit of the seed with ``CITIES`` city bureaus
  under it in the bureau dimension; for each of them and the province, the month's aggregates —
  ``MEASURES`` measures over dimension ``all`` and the breakdowns (2 systems, 5 subject types,
  30 violations, 8 penalty types): 920 figures a bureau. Every city's report for the month is
  submitted; the province's is generated and submitted through the API as its legal-affairs
  officer.
* Measured: ``GET /api/v1/statistics/reports/{province}/{month}`` through the gateway — the
  newest submitted revision, its figures and the rollup of the cities' submitted reports (sums
  of 10,120 figures) — as JSON (200), and the same with ``If-None-Match`` (304, a scheduled
  pull that finds nothing new).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx

from services.common.auth import Role

PROVINCE_ID = 8  # a provincial pilot unit the registry seed makes
CITIES = 11
FIRST_CITY_ID = 9_100_000
PERIOD = "2026-05"
MEASURES = [f"measure_{i:02d}" for i in range(20)]
BREAKDOWN = (
    [("all", "")]
    + [("system", s) for s in ("quality_supervision", "entry_exit")]
    + [("subject_type", s) for s in ("enterprise", "certification_body", "auditor", "product", "certificate")]
    + [("violation", f"v{i:02d}") for i in range(30)]
    + [("penalty_type", p) for p in ("warning", "fine", "confiscation", "order_to_correct", "order_to_stop",
                                     "suspend_certificate", "revoke_certificate", "revoke_approval")]
)  # fmt: skip


COLUMNS = ["bureau_id", "period", "dimension", "value", "measure", "bureau_path", "period_kind"]
COLUMNS += ["amount", "updated_at"]


def raw_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def load(url: str, province_path: str) -> dict[str, int]:
    rng = random.Random(20261130)  # noqa: S311 - bench data
    conn = await asyncpg.connect(raw_url(url))
    try:
        cities = [(FIRST_CITY_ID + i, f"{province_path}{FIRST_CITY_ID + i}.") for i in range(CITIES)]
        now = datetime.now(UTC)
        dims = [(PROVINCE_ID, province_path, 1, "provincial", "浙江省质量技术监督局")] + [
            (cid, path, PROVINCE_ID, "city", f"城市局{i}") for i, (cid, path) in enumerate(cities)
        ]
        await conn.copy_records_to_table(
            "bureau_dimension",
            records=[(*d, now) for d in dims],
            columns=["bureau_id", "bureau_path", "parent_id", "level", "name", "refreshed_at"],
        )
        rows = []
        for bureau_id, path in [(PROVINCE_ID, province_path), *cities]:
            for measure in MEASURES:
                for dimension, value in BREAKDOWN:
                    amount = (
                        Decimal(rng.randrange(0, 500))
                        if dimension != "all"
                        else Decimal(rng.randrange(500, 5000))
                    )
                    rows.append((bureau_id, PERIOD, dimension, value, measure, path, "month", amount, now))
        await conn.copy_records_to_table(
            "aggregate",
            records=rows,
            columns=COLUMNS,
        )
        for cid, path in cities:
            report_id = await conn.fetchval(
                "INSERT INTO statistical_report (bureau_id, bureau_path, period, period_kind, revision, "
                "state, due_on, created_at, created_by, figures_taken_at) "
                "VALUES ($1, $2, $3, 'month', 1, 'draft', "
                "'2026-06-10', now(), 'bench', now()) RETURNING id",
                cid,
                path,
                PERIOD,
            )
            await conn.execute(
                "INSERT INTO report_figure (report_id, measure, dimension, value, amount) "
                "SELECT $1, measure, dimension, value, amount FROM aggregate "
                "WHERE bureau_id = $2 AND period = $3",
                report_id,
                cid,
                PERIOD,
            )
            await conn.execute(
                "UPDATE statistical_report SET state = 'submitted', submitted_at = now(), "
                "submitted_on = current_date, submitted_by = 'bench' WHERE id = $1",
                report_id,
            )
        await conn.execute("ANALYZE")
        return {"figures": len(rows), "per_bureau": len(MEASURES) * len(BREAKDOWN)}
    finally:
        await conn.close()


def submit_province(gateway: str, token: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=30) as client:
        draft = client.post("/api/v1/statistics/reports", json={"bureau_id": PROVINCE_ID, "period": PERIOD})
        draft.raise_for_status()
        submitted = client.post(
            f"/api/v1/statistics/reports/{draft.json()['id']}/submission",
            headers={"If-Match": draft.headers["ETag"]},
        )
        submitted.raise_for_status()
        return submitted.json()


def run(bench) -> str:
    """The section's markdown (``bench`` is tools.bench.Bench)."""
    from tools.bench import (
        MachineLoad,
        _rounds_row,
        check_all_2xx,
        command_line,
        cpu_seconds,
        machine_line,
        median,
        parse_wrk,
    )

    args, running = bench.args, bench.running
    connections = bench.connections(16)
    province = httpx.get(
        running.service_url("registry") + f"/api/v1/registry/bureaus/{PROVINCE_ID}",
        headers={"Authorization": f"Bearer {bench.token}"},
    ).json()
    loaded = asyncio.run(load(bench.urls["statistics"], province["path"]))
    token = bench.signed(PROVINCE_ID, province["path"], (Role.LEGAL,))
    report = submit_province(running.gateway_url, token)
    path = f"/api/v1/statistics/reports/{PROVINCE_ID}/{PERIOD}"
    url = running.gateway_url + path
    probe = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    probe.raise_for_status()
    etag = probe.headers["ETag"]
    size = len(probe.content)

    def wrk_run(seconds: int, extra: list[str], clients: int = connections) -> dict[str, float]:
        command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--latency"]
        command += ["-H", f"Authorization: Bearer {token}", *extra, url]
        return parse_wrk(subprocess.run(command, capture_output=True, text=True, check=True).stdout)

    conditional = ["-H", f"If-None-Match: {etag}"]
    wrk_run(3, [])  # warm
    pids = {"statistics": bench.pid("statistics"), "gateway": bench.pid("gateway")}
    full, revalidated, light = [], [], []
    few = max(1, connections // 4)
    with MachineLoad(pids) as machine:
        for i in range(args.rounds):
            for rounds, extra, clients in ((full, [], connections), (revalidated, conditional, connections),
                                           (light, [], few)):  # fmt: skip
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                result = wrk_run(args.seconds, extra, clients)
                for name, pid in pids.items():
                    result[f"cpu_{name}"] = (
                        (cpu_seconds(pid) - before[name]) * 1000 / max(result["requests"], 1)
                    )
                rounds.append(result)
            last, again = full[-1], revalidated[-1]
            print(f"reports round {i + 1}: 200 {last['rps']:.0f}/s p99 {last['p99']:.1f} ms; "
                  f"304 {again['rps']:.0f}/s p99 {again['p99']:.1f} ms", flush=True)  # fmt: skip
    check_all_2xx(full=full, revalidated=revalidated, light=light)  # wrk counts neither 2xx nor 3xx
    check = httpx.get(url, headers={"Authorization": f"Bearer {token}", "If-None-Match": etag})
    if check.status_code != 304:
        raise SystemExit(f"the conditional pull answered {check.status_code}, not 304")
    p99 = median(full, "p99")
    return f"""## Statistical report read through the gateway under concurrent load

Command: `{command_line("reports", args, connections=connections)}`
{machine_line(args, connections)}
{machine.describe()}

Data: the province's monthly report ({PERIOD}) as submitted through the API: its
{loaded["per_bureau"]} figures ({len(MEASURES)} measures × dimension `all` and {len(BREAKDOWN) - 1} breakdown
values) and the rollup of its {CITIES} cities' submitted reports (sums over
{CITIES * loaded["per_bureau"]:,} figures) with {len(report["rollup"]["figures"])} rows beside its own; the
JSON body is {size / 1024:.0f} KiB. The caller is the province's legal-affairs officer; wrk sends
`GET {path}` through the gateway, then the same with `If-None-Match` (the scheduled pull
that finds nothing new: 304, no body). Rounds alternate; medians of {args.rounds}.

| request | throughput (req/s) | p50 (ms) | p99 (ms) | statistics CPU / req (ms) | gateway CPU / req (ms) |
| --- | ---: | ---: | ---: | ---: | ---: |
{_rounds_row("200, the whole report", full, ("cpu_statistics", "cpu_gateway"))}
{_rounds_row("304, If-None-Match", revalidated, ("cpu_statistics", "cpu_gateway"))}
{_rounds_row(f"200, the whole report, {few} connections", light, ("cpu_statistics", "cpu_gateway"))}

p99 of the full read at {connections} connections: **{p99:.1f} ms** (goal < 20 ms); at {few}
connections: {median(light, "p99"):.1f} ms. wrk keeps every connection busy (closed loop), so at
{connections} connections the p50 is the queue of {connections} requests over the throughput the
two cores give (the machine line above says how much of it went to other work), and the p99 is
that queue plus the machine's scheduling.
"""
