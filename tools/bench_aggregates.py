"""The `aggregates` section of ``make bench``: the full rebuild of every aggregate from
1,000,000 case facts (with as many lead facts and a tenth as many certificate status changes,
loaded with COPY into the statistics database), against the equivalent raw SQL ``GROUP BY``
over the same facts in the same run.

* Measured: ``services.statistics.aggregates.sql.rebuild`` — the advisory lock, the figures
  computed into a temporary table, upserted into ``aggregate`` and the rows no fact backs
  zeroed — in one transaction, committed. Each round starts from an empty ``aggregate`` table
  (truncated outside the timing), so every figure is written: the dearest rebuild. A rebuild
  over figures already right (nothing to write) is timed once as well.
* Against: the raw ``GROUP BY``: the same groups and measures — every bureau subtree × month,
  quarter, year × dimension value × measure, the same SELECT the rebuild runs
  (``figures_query``) — as a plain ``CREATE TEMP TABLE … AS SELECT`` (no upsert, no index, no
  zeroing, rolled back).
Rounds alternate which of the two runs first; medians.

``python -m tools.bench_aggregates --url postgresql://… --cases 100000`` runs it on its own on
a migrated statistics database (for trying sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from services.common.dates import today
from services.statistics.aggregates.sql import figures_query, rebuild

CHUNK = 50_000
PROVINCES, CITIES, COUNTIES = 4, 5, 5  # 100 county bureaus, 20 cities, 4 provinces, 1 national
SUBJECTS = ("enterprise", "body", "auditor", "product", "certificate")
PENALTIES = (
    "fine",
    "warning",
    "confiscation",
    "order_to_correct",
    "suspend_certificate",
    "revoke_certificate",
)
VIOLATIONS = [f"violation-{i:02d}" for i in range(40)]
SYSTEMS = ("quality_supervision", "entry_exit")


def raw_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _bureaus() -> list[tuple[int, str, str]]:
    """(county id, path, system) of the synthetic tree below the national bureau (ids ≥ 10^6)."""
    out = []
    for p in range(PROVINCES):
        pid = 1_000_000 + p
        for c in range(CITIES):
            cid = 2_000_000 + p * 100 + c
            for k in range(COUNTIES):
                kid = 3_000_000 + p * 10_000 + c * 100 + k
                out.append((kid, f"1.{pid}.{cid}.{kid}.", SYSTEMS[p % 4 == 3]))
    return out


async def load_facts(url: str, cases: int) -> dict[str, Any]:
    """COPY ``cases`` case facts, as many lead facts, cases/10 certificate status changes."""
    started = time.perf_counter()
    rng = random.Random(20261130)  # noqa: S311 - bench data
    now_day = today()
    first = date(2024, 1, 1)
    span = (now_day - first).days
    tree = _bureaus()
    conn = await asyncpg.connect(raw_url(url))
    try:
        await conn.execute("TRUNCATE case_fact, lead_fact, certificate_status_fact, aggregate")
        case_columns = [
            "case_id", "version", "event_id", "bureau_id", "bureau_path", "number", "lead_id", "procedure",
            "state", "subject_type", "subject_id", "party_kind", "violation_code", "opened_on", "decided_on",
            "closed_on", "decision_kind", "penalty_kinds", "fine_decided", "fine_current", "confiscation",
            "paid_total", "transferred_to_judicial_organ", "needs_legal_review", "needs_filing", "next_due",
            "next_due_rule", "officer_count", "filing_due", "filed_on", "system", "updated_at",
        ]  # fmt: skip
        lead_columns = [
            "lead_id", "version", "event_id", "bureau_id", "bureau_path", "state", "source", "subject_type",
            "subject_id", "received_on", "decided_on", "next_due", "case_id", "system", "updated_at",
        ]  # fmt: skip
        stamp = await conn.fetchval("SELECT now()")
        for start in range(0, cases, CHUNK):
            case_rows, lead_rows = [], []
            for serial in range(start + 1, min(start + CHUNK, cases) + 1):
                bureau_id, path, system = tree[serial % len(tree)]
                received = first + timedelta(days=rng.randrange(span))
                opened = min(received + timedelta(days=rng.randint(1, 30)), now_day)
                decided = closed = None
                fine = paid = confiscated = Decimal(0)
                kinds: list[str] = []
                roll = rng.random()
                if roll < 0.65:  # decided
                    decided = min(opened + timedelta(days=rng.randint(10, 120)), now_day)
                    kinds = sorted(set(rng.sample(PENALTIES, rng.choice((1, 1, 2)))))
                    if "fine" in kinds:
                        fine = Decimal(rng.randrange(1_000, 200_000, 100))
                        paid = fine if rng.random() < 0.7 else Decimal(0)
                    if "confiscation" in kinds:
                        confiscated = Decimal(rng.randrange(500, 50_000, 100))
                    if rng.random() < 0.85:
                        closed = min(decided + timedelta(days=rng.randint(5, 90)), now_day)
                elif roll < 0.72:  # terminated or transferred
                    closed = min(opened + timedelta(days=rng.randint(5, 60)), now_day)
                open_case = closed is None
                due = opened + timedelta(days=rng.choice((15, 90, 120))) if open_case else None
                major = serial % 20 == 0 and decided is not None
                filing_due = decided + timedelta(days=14) if major else None
                filed = (
                    filing_due + timedelta(days=rng.randint(-10, 10))
                    if major and rng.random() < 0.8
                    else None
                )
                case_rows.append((
                    serial, 3, uuid.uuid4(), bureau_id, path, f"B-{serial}", serial, "ordinary",
                    "investigating" if open_case else "closed", rng.choice(SUBJECTS), serial % 100_000 + 1,
                    "organisation", rng.choice(VIOLATIONS), opened, decided, closed,
                    "penalty" if decided else None, kinds, fine, fine, confiscated, paid,
                    closed is not None and decided is None and rng.random() < 0.2, major, major, due,
                    "decision" if due else None, 2, filing_due, filed, system, stamp,
                ))  # fmt: skip
                lead_rows.append((
                    serial, 2, uuid.uuid4(), bureau_id, path, "opened", "complaint", case_rows[-1][9],
                    serial % 100_000 + 1, received, opened, None, serial, system, stamp,
                ))  # fmt: skip
            await conn.copy_records_to_table("case_fact", records=case_rows, columns=case_columns)
            await conn.copy_records_to_table("lead_fact", records=lead_rows, columns=lead_columns)
        certificates = [
            (
                uuid.uuid4(),
                i,
                *tree[i % len(tree)][:2],
                "CCC",
                "valid",
                rng.choice(("suspended", "revoked")),
                None,
                first + timedelta(days=rng.randrange(span)),
                tree[i % len(tree)][2],
            )
            for i in range(1, cases // 10 + 1)
        ]
        await conn.copy_records_to_table(
            "certificate_status_fact",
            records=certificates,
            columns=[
                "event_id", "certificate_id", "bureau_id", "bureau_path", "scheme", "from_status",
                "to_status", "case_ref", "changed_on", "system",
            ],
        )  # fmt: skip
        await conn.execute("VACUUM ANALYZE case_fact")
        await conn.execute("VACUUM ANALYZE lead_fact")
        await conn.execute("VACUUM ANALYZE certificate_status_fact")
    finally:
        await conn.close()
    return {
        "cases": cases,
        "leads": cases,
        "certificates": cases // 10,
        "bureaus": len(tree),
        "seconds": time.perf_counter() - started,
    }


async def _timed_rebuild(url: str, *, empty: bool) -> tuple[float, dict[str, int]]:
    from sqlalchemy.ext.asyncio import create_async_engine

    if empty:
        conn = await asyncpg.connect(raw_url(url))
        try:
            await conn.execute("TRUNCATE aggregate")
            await conn.execute("VACUUM aggregate")
        finally:
            await conn.close()
    engine = create_async_engine(
        url if "+asyncpg" in url else url.replace("postgresql://", "postgresql+asyncpg://")
    )
    try:
        async with engine.connect() as conn:
            started = time.perf_counter()
            async with conn.begin():
                result = await rebuild(conn, today=today())
            return time.perf_counter() - started, result
    finally:
        await engine.dispose()


async def _timed_raw(url: str) -> tuple[float, int]:
    query = figures_query().replace(":today", "$1::date")
    conn = await asyncpg.connect(raw_url(url))
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute(f"CREATE TEMP TABLE raw_figures AS {query}", today())
            rows = await conn.fetchval("SELECT count(*) FROM raw_figures")
            elapsed = time.perf_counter() - started
            await conn.execute("DROP TABLE raw_figures")
        return elapsed, int(rows)
    finally:
        await conn.close()


async def measure(url: str, cases: int, rounds: int) -> dict[str, Any]:
    loaded = await load_facts(url, cases)
    print(f"aggregates: loaded {loaded}", flush=True)
    await _timed_raw(url)  # warm the caches for both
    rebuilds, raws, figures = [], [], None
    for i in range(rounds):
        order = ("rebuild", "raw") if i % 2 == 0 else ("raw", "rebuild")
        for which in order:
            if which == "rebuild":
                seconds, result = await _timed_rebuild(url, empty=True)
                rebuilds.append(seconds)
                figures = result
            else:
                seconds, count = await _timed_raw(url)
                raws.append(seconds)
        print(
            f"aggregates round {i + 1}: rebuild {rebuilds[-1]:.1f} s, raw GROUP BY {raws[-1]:.1f} s",
            flush=True,
        )
    steady, steady_result = await _timed_rebuild(url, empty=False)
    return {
        "loaded": loaded,
        "rebuilds": rebuilds,
        "raws": raws,
        "figures": figures,
        "raw_rows": count,
        "steady": steady,
        "steady_result": steady_result,
    }


def markdown(result: dict[str, Any], command: str, conditions: str) -> str:
    loaded, rebuilds, raws = result["loaded"], result["rebuilds"], result["raws"]
    ratios = [r / w for r, w in zip(rebuilds, raws, strict=True)]
    return f"""## Aggregates: full rebuild at {loaded["cases"]:,} case facts against the raw GROUP BY

Command: `{command}`
{conditions}

Data (COPY into the statistics database, {loaded["seconds"]:.0f} s): {loaded["cases"]:,} case facts,
{loaded["leads"]:,} lead facts and {loaded["certificates"]:,} certificate status changes over
{loaded["bureaus"]:,} county bureaus ({PROVINCES} provinces × {CITIES} cities × {COUNTIES} counties), dates from 2024-01-01 to
today; about two thirds of the cases decided (one or two penalty kinds of six, 40 violation codes), most
of them closed; a twentieth major with a filing deadline. The figures: every bureau subtree (county,
city, province, national) × month, quarter and year × dimension value (all, system, subject type,
violation, penalty type) × measure — {result["raw_rows"]:,} non-zero figures, every one written
by each rebuild round ({result["figures"]["written"]:,} rows).

| run | median (s) | rounds (s) |
| --- | ---: | --- |
| `rebuild_all`: lock, compute, upsert into `aggregate` (empty), zero the unbacked | {statistics.median(rebuilds):.1f} | {", ".join(f"{s:.1f}" for s in rebuilds)} |
| raw `CREATE TEMP TABLE … AS SELECT … GROUP BY` of the same figures | {statistics.median(raws):.1f} | {", ".join(f"{s:.1f}" for s in raws)} |

Rebuild / raw GROUP BY: **{statistics.median(ratios):.2f}×** (median of the per-round ratios; rounds:
{", ".join(f"{r:.2f}" for r in ratios)}). Goal: ≤ 2×. A rebuild over figures already right (nothing
to write, {result["steady_result"]["written"]} rows written, {result["steady_result"]["zeroed"]} zeroed):
{result["steady"]:.1f} s.

The raw GROUP BY is the very SELECT the rebuild runs (services/statistics/aggregates/sql.py,
`figures_query`: the facts grouped by leaf bureau and month, rolled up to quarters, years and every
ancestor, pending and overdue cases as running sums of their start and stop months), written to an
unindexed temporary table: the difference is what keeping the figures costs — the upsert into the
keyed `aggregate` table and its indexes, and the zeroing pass.
"""  # noqa: E501


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", required=True, help="a migrated statistics database (its facts are replaced)"
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(measure(args.url, args.cases, args.rounds))
    print(
        markdown(result, f"python -m tools.bench_aggregates --cases {args.cases} --rounds {args.rounds}", "")
    )


if __name__ == "__main__":
    main()


# --- freshness: a case change visible in the aggregates, under load ----------------------------


async def _closed_today(http, base: str, token: str, province_id: int) -> int:
    answer = await http.get(
        f"{base}/api/v1/statistics/aggregates",
        params={
            "bureau_id": province_id,
            "period": f"{today():%Y-%m}",
            "dimension": "all",
            "measure": "cases_closed",
        },
        headers={"Authorization": token},
    )
    answer.raise_for_status()
    items = answer.json()["items"]
    return int(items[0]["amount"]) if items else 0


async def _case_events(url: str) -> int:
    conn = await asyncpg.connect(raw_url(url))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM outbox_event WHERE type = 'enforcement.case.changed'"
        )
    finally:
        await conn.close()


async def probe_freshness(
    enforcement: str,
    statistics_url: str,
    load_token: str,
    load_cases: list[int],
    probe_token: str,
    read_token: str,
    probe_cases: list[int],
    province_id: int,
    enforcement_db: str,
    give_up_after: float = 60.0,
) -> dict[str, Any]:
    """While every load client takes its case to suspended and back (each step an event the
    statistics worker applies), terminate the probe cases one at a time and time each until the
    province's ``cases_closed`` of this month shows it in ``GET /api/v1/statistics/aggregates``."""
    import httpx

    from tools.bench_cases import transition_load

    events_before = await _case_events(enforcement_db)
    began = time.perf_counter()
    load = asyncio.create_task(transition_load(enforcement, load_token, load_cases, 3600))
    latencies: list[float] = []
    missed = 0
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            await asyncio.sleep(2)  # the load running
            for case_id in probe_cases:
                before = await _closed_today(http, statistics_url, read_token, province_id)
                case = await http.get(
                    f"{enforcement}/api/v1/enforcement/cases/{case_id}",
                    headers={"Authorization": probe_token},
                )
                started = time.perf_counter()
                answer = await http.post(
                    f"{enforcement}/api/v1/enforcement/cases/{case_id}/transitions",
                    json={"step": "terminate", "reason": "基准终止", "legal_basis": "bench"},
                    headers={"Authorization": probe_token, "If-Match": case.headers["ETag"]},
                )
                if answer.status_code != 200:
                    raise RuntimeError(f"terminate answered {answer.status_code}: {answer.text}")
                committed = time.perf_counter()
                while await _closed_today(http, statistics_url, read_token, province_id) <= before:
                    if time.perf_counter() - committed > give_up_after:
                        missed += 1
                        break
                    await asyncio.sleep(0.02)
                else:
                    latencies.append(time.perf_counter() - started)  # from the request sent
                print(
                    f"freshness probe {len(latencies) + missed}: answered in {committed - started:.2f} s, "
                    f"visible after {time.perf_counter() - started:.2f} s",
                    flush=True,
                )
    finally:
        load.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await load
    rate = (await _case_events(enforcement_db) - events_before) / (time.perf_counter() - began)
    latencies.sort()
    return {
        "events_per_second": rate,
        "latencies": latencies,
        "missed": missed,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": latencies[max(int(len(latencies) * 0.95) - 1, 0)] if latencies else float("nan"),
        "max": latencies[-1] if latencies else float("nan"),
    }
