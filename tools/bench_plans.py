"""The `draw` section of ``make bench``: the draw of an inspection plan (双随机) from a pool of
1,000,000 certificates in three strata, against a plain SQL random pick over the same pool.

* Data: ``tools.bench_data.load_certificates`` (COPY), then every loaded certificate made valid
  (the pool: the valid certificates of the national regulator's subtree), about 3 % with a
  suspension (and its lifting) last year — stratum ``recent_suspension``, weight 3 — and a
  fifth of the management-system certificates with their yearly surveillance more than 12 months
  late — ``surveillance_overdue``, weight 2; the rest ``base``, weight 1. Thirty supervision
  officers with credentials make the officer pool.
* Measured: the service function ``services.registry.plans.service.draw_plan`` on a fresh plan,
  in a transaction rolled back afterwards — the whole draw: freezing the pool (one
  ``INSERT … SELECT`` of every member with its stratum) and its digest, the officer pool,
  the allocation, the subjects drawn per stratum, recusals, the officers drawn, the tasks and
  the audit entry.
* Against: ``SELECT id FROM certificate WHERE <the pool's filter> ORDER BY md5(seed || id)
  LIMIT n`` over the same certificates, with the seed the draw used.
Rounds alternate which of the two runs first; medians.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from datetime import date
from typing import Any

import asyncpg

from services.common.auth import Principal, PrincipalKind, Role
from services.common.db import make_engine, make_sessionmaker
from tools.bench_data import load_certificates

OFFICERS = 30
SUSPENDED_EVERY = 33  # about 3 % of the pool: a suspension last year, since lifted
OVERDUE_EVERY = 5  # a fifth of the management-system certificates: surveillance overdue
STRATA = [
    {"code": "recent_suspension", "rule": "recent_suspension", "weight": 3, "years": 3},
    {"code": "surveillance_overdue", "rule": "surveillance_overdue", "weight": 2, "years": 3},
]
# The plan's pool (every valid certificate of the national regulator's subtree), picked at random.
POOL_COUNT = "SELECT count(*) FROM certificate WHERE bureau_path LIKE '1.%' AND status = 'valid'"
PICK = (
    "SELECT id FROM certificate WHERE bureau_path LIKE '1.%' AND status = 'valid' "
    "ORDER BY md5($1 || id) LIMIT $2"
)


def raw_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def prepare_pool(url: str, count: int, year: int) -> dict[str, Any]:
    """Load ``count`` certificates with COPY and shape the strata; the strata's sizes."""
    loaded = await load_certificates(url, count)
    started = time.perf_counter()
    conn = await asyncpg.connect(raw_url(url))
    try:
        first = await conn.fetchval("SELECT min(id) FROM certificate WHERE holder_name LIKE '基准企业%'")
        await conn.execute("UPDATE certificate SET status = 'valid' WHERE status <> 'valid'")
        # Management-system certificates: surveilled three months before the plan's year, but
        # every fifth more than a year before (overdue); CCC certificates have no such rule.
        await conn.execute(
            "UPDATE certificate SET last_surveillance_on = CASE WHEN id % $2 = 0 THEN $3::date "
            "ELSE $4::date END WHERE scheme <> 'ccc' AND id >= $1",
            first,
            OVERDUE_EVERY,
            date(year - 2, 6, 1),
            date(year - 1, 10, 1),
        )
        for from_status, to_status, month in (("valid", "suspended", 3), ("suspended", "valid", 6)):
            await conn.execute(
                "INSERT INTO certificate_status_change (certificate_id, from_status, to_status, reason, "
                "actor_kind, actor_id, changed_at) SELECT id, $1, $2, 'bench', 'seed', 'bench', $3 "
                "FROM certificate WHERE id >= $4 AND id % $5 = 0",
                from_status,
                to_status,
                date(year - 1, month, 1),
                first,
                SUSPENDED_EVERY,
            )
        national = await conn.fetchrow("SELECT id, path FROM bureau WHERE parent_id IS NULL")
        await conn.executemany(
            "INSERT INTO officer (bureau_id, body, name, credential_number, active, version, created_at, "
            "updated_at) VALUES ($1, 'supervision', $2, $3, true, 1, now(), now())",
            [(national["id"], f"基准监督员{i:02d}", f"BENCHSUP{i:04d}") for i in range(OFFICERS)],
        )
        await conn.execute("VACUUM ANALYZE certificate")
        await conn.execute("ANALYZE certificate_status_change")
        pool = await conn.fetchval(POOL_COUNT)
        return {
            **loaded,
            "pool": pool,
            "prepared_seconds": time.perf_counter() - started,
            "national": dict(national),
        }
    finally:
        await conn.close()


async def draw_once(maker, principal: Principal, year: int, draw_count: int) -> dict[str, Any]:
    """One draw of a fresh plan through ``draw_plan``, timed, then rolled back."""
    from services.registry.plans.schemas import PlanCreate
    from services.registry.plans.service import create_plan, draw_plan

    from services.registry.models import AUDIT

    async with maker() as session:
        data = PlanCreate.model_validate(
            {
                "year": year,
                "title": "基准抽查计划",
                "subject_type": "certificate",
                "draw_count": draw_count,
                "strata": STRATA,
            }
        )
        plan = await create_plan(session, AUDIT, principal, data)
        await session.flush()
        started = time.perf_counter()
        await draw_plan(session, AUDIT, principal, plan)
        seconds = time.perf_counter() - started
        result = {
            "seconds": seconds,
            "seed": plan.seed,
            "pool_size": plan.pool_size,
            "allocation": dict(plan.allocation),
        }
        await session.rollback()
    return result


async def md5_pick(url: str, seed: str, n: int) -> float:
    conn = await asyncpg.connect(raw_url(url))
    try:
        started = time.perf_counter()
        rows = await conn.fetch(PICK, seed, n)
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    if len(rows) != n:
        raise SystemExit(f"the SQL pick returned {len(rows)} rows, not {n}")
    return seconds


async def measure(url: str, rounds: int, year: int, draw_count: int) -> dict[str, Any]:
    engine = make_engine(url, pool_size=2, max_overflow=0)
    maker = make_sessionmaker(engine)
    principal = Principal(
        account_id="bench",
        kind=PrincipalKind.OFFICER,
        bureau_id=1,
        bureau_path="1.",
        roles=frozenset({Role.SUPERVISION}),
    )
    draws: list[dict[str, Any]] = []
    picks: list[float] = []
    try:
        warm = await draw_once(maker, principal, year, draw_count)  # caches warm for both
        await md5_pick(url, warm["seed"], draw_count)
        for i in range(rounds):
            if i % 2 == 0:
                draws.append(await draw_once(maker, principal, year, draw_count))
                picks.append(await md5_pick(url, draws[-1]["seed"], draw_count))
            else:
                picks.append(await md5_pick(url, warm["seed"] + str(i), draw_count))
                draws.append(await draw_once(maker, principal, year, draw_count))
            print(f"draw round {i + 1}: draw {draws[-1]['seconds']:.2f} s, "
                  f"SQL pick {picks[-1]:.2f} s", flush=True)  # fmt: skip
    finally:
        await engine.dispose()
    return {"draws": draws, "picks": picks}


def run(bench) -> str:
    """The section's markdown (``bench`` is tools.bench.Bench)."""
    from tools.bench import MachineLoad, command_line

    args = bench.args
    url = bench.urls["registry"]
    year = date.today().year
    prepared = asyncio.run(prepare_pool(url, args.certificates, year))
    with MachineLoad({"bench": os.getpid()}) as load:
        measured = asyncio.run(measure(url, args.rounds, year, args.draw_count))
    draw_seconds = [d["seconds"] for d in measured["draws"]]
    ratios = [d / p for d, p in zip(draw_seconds, measured["picks"], strict=True)]
    allocation = measured["draws"][0]["allocation"]
    strata_rows = "\n".join(
        f"| `{code}` | {a['weight']:g} | {a['pool']:,} | {a['drawn']:,} | "
        f"{a['drawn'] / a['pool'] if a['pool'] else 0:.6f} |"
        for code, a in allocation.items()
    )
    ratio = statistics.median(ratios)
    return f"""## Draw of an inspection plan from a pool of {prepared["pool"]:,} certificates

Command: `{command_line("draw", args, certificates=args.certificates, draw_count=args.draw_count)}`
Run: {args.rounds} rounds, alternating which of the two runs first (after one warm-up of each);
medians. Everything (this process, PostgreSQL) shares the same machine.
{load.describe()}

Data: {prepared["certificates"]:,} certificates loaded with COPY in {prepared["seconds"]:.0f} s
(tools/bench_data.py), then made valid and given their risk history in
{prepared["prepared_seconds"]:.0f} s (tools/bench_plans.py); the pool is every valid certificate of
the national regulator's subtree ({prepared["pool"]:,}, with the demo seed's); {OFFICERS} supervision
officers with credentials. A plan of {args.draw_count:,} certificates in three strata:

| stratum | weight | pool N_h | drawn n_h | chance n_h / N_h |
| --- | ---: | ---: | ---: | ---: |
{strata_rows}

Measured: the service function `draw_plan` (services/registry/plans/service.py) on a fresh plan,
in one transaction rolled back after each round — freezing the pool ({prepared["pool"]:,} rows of
`plan_pool_member`, each with its stratum, and their SHA-256 digest), the officer pool, the
allocation, the draw per stratum, recusals, the officers of each task, {args.draw_count:,} tasks and
the audit entry. Against: `{PICK}` with $1 the seed of the round's draw and $2 = {args.draw_count},
on the same pool, over asyncpg.

| | median (s) | rounds (s) |
| --- | ---: | --- |
| `draw_plan` | {statistics.median(draw_seconds):.2f} | {", ".join(f"{s:.2f}" for s in draw_seconds)} |
| SQL pick (`ORDER BY md5(seed \\|\\| id) LIMIT n`) | {statistics.median(measured["picks"]):.2f} | {
        ", ".join(f"{s:.2f}" for s in measured["picks"])
    } |

Draw / SQL pick: **{ratio:.2f}×** (median of the rounds' ratios: {", ".join(f"{r:.2f}" for r in ratios)}).
Goal: ≤ 2×.
"""
