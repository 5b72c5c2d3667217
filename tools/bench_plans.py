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
import secrets
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
PICK_LABEL = "SQL pick `ORDER BY md5(seed \\|\\| id) LIMIT n`"  # the pipes escaped for the table
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
    from services.registry.models import AUDIT
    from services.registry.plans.schemas import PlanCreate
    from services.registry.plans.service import create_plan, draw_plan

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


async def core_once(maker, principal: Principal, year: int, draw_count: int) -> dict[str, Any]:
    """The draw's SQL core on a fresh plan — freeze the pool, allocate, draw the subjects of each
    stratum (services/registry/plans/draw.py, as ``draw_plan`` calls it) — timed, rolled back."""
    from services.registry.models import AUDIT
    from services.registry.plans import draw
    from services.registry.plans.service import create_plan

    async with maker() as session:
        plan = await create_plan(session, AUDIT, principal, _plan_data(year, draw_count))
        await session.flush()
        conn = await session.connection()
        seed = draw.new_seed()
        started = time.perf_counter()
        pool_size, _digest = await draw.freeze_pool(conn, plan)
        sizes = await draw.stratum_sizes(conn, plan)
        weights = {s["code"]: float(s["weight"]) for s in draw.plan_strata(plan)}
        allocation = draw.allocate(draw.wanted(plan, pool_size), sizes, weights)
        subjects = await draw.draw_subjects(conn, plan, allocation, seed)
        seconds = time.perf_counter() - started
        await session.rollback()
    if len(subjects) != draw_count:
        raise SystemExit(f"the draw's core drew {len(subjects)} subjects, not {draw_count}")
    return {"seconds": seconds, "seed": seed}


def _plan_data(year: int, draw_count: int):
    from services.registry.plans.schemas import PlanCreate

    return PlanCreate.model_validate(
        {
            "year": year,
            "title": "基准抽查计划",
            "subject_type": "certificate",
            "draw_count": draw_count,
            "strata": STRATA,
        }
    )


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
    cores: list[dict[str, Any]] = []
    draws: list[dict[str, Any]] = []
    picks: list[float] = []
    try:
        warm = await draw_once(maker, principal, year, draw_count)  # caches warm for all three
        await core_once(maker, principal, year, draw_count)
        await md5_pick(url, warm["seed"], draw_count)
        for i in range(rounds):
            # The pick runs first in odd rounds, last in even ones (its cost does not depend on
            # the seed: every id is hashed and sorted whichever the seed).
            if i % 2:
                picks.append(await md5_pick(url, secrets.token_hex(16), draw_count))
            cores.append(await core_once(maker, principal, year, draw_count))
            draws.append(await draw_once(maker, principal, year, draw_count))
            if not i % 2:
                picks.append(await md5_pick(url, cores[-1]["seed"], draw_count))
            print(f"draw round {i + 1}: core {cores[-1]['seconds']:.2f} s, draw_plan "
                  f"{draws[-1]['seconds']:.2f} s, SQL pick {picks[-1]:.2f} s", flush=True)  # fmt: skip
    finally:
        await engine.dispose()
    return {"cores": cores, "draws": draws, "picks": picks}


def run(bench) -> str:
    """The section's markdown (``bench`` is tools.bench.Bench)."""
    from tools.bench import MachineLoad, command_line

    args = bench.args
    url = bench.urls["registry"]
    year = date.today().year
    prepared = asyncio.run(prepare_pool(url, args.certificates, year))
    with MachineLoad({"bench": os.getpid()}) as load:
        measured = asyncio.run(measure(url, args.rounds, year, args.draw_count))
    core_seconds = [c["seconds"] for c in measured["cores"]]
    draw_seconds = [d["seconds"] for d in measured["draws"]]
    picks = measured["picks"]
    core_ratios = [c / p for c, p in zip(core_seconds, picks, strict=True)]
    draw_ratios = [d / p for d, p in zip(draw_seconds, picks, strict=True)]
    allocation = measured["draws"][0]["allocation"]
    strata_rows = "\n".join(
        f"| `{code}` | {a['weight']:g} | {a['pool']:,} | {a['drawn']:,} | "
        f"{a['drawn'] / a['pool'] if a['pool'] else 0:.6f} |"
        for code, a in allocation.items()
    )

    def row(label: str, seconds: list[float], ratios: list[float] | None) -> str:
        ratio = f"**{statistics.median(ratios):.2f}×**" if ratios else "1"
        rounds = ", ".join(f"{s:.2f}" for s in seconds)
        return f"| {label} | {statistics.median(seconds):.2f} | {ratio} | {rounds} |"

    return f"""## Draw of an inspection plan from a pool of {prepared["pool"]:,} certificates

Command: `{command_line("draw", args, certificates=args.certificates, draw_count=args.draw_count)}`
Run: {args.rounds} rounds after one warm-up of each; the SQL pick runs first in every other
round, last in the others; medians. This process and PostgreSQL share the machine.
{load.describe()}

Data: {prepared["certificates"]:,} certificates loaded with COPY in {prepared["seconds"]:.0f} s
(tools/bench_data.py), then made valid and given their risk history in
{prepared["prepared_seconds"]:.0f} s (tools/bench_plans.py); the pool is every valid certificate
of the national regulator's subtree ({prepared["pool"]:,}, the demo seed's included);
{OFFICERS} supervision officers with credentials. A plan drawing {args.draw_count:,}
certificates from three strata:

| stratum | weight | pool N_h | drawn n_h | chance n_h / N_h |
| --- | ---: | ---: | ---: | ---: |
{strata_rows}

Measured, each on a fresh plan in a transaction rolled back afterwards:
* **the draw's SQL core** — freeze + allocation + subject draw: `draw.freeze_pool` (one
  insert from a query of the {prepared["pool"]:,} members, each with its stratum by the risk rules,
  and their SHA-256 digest), `stratum_sizes`, `allocate`, `draw_subjects` (per stratum, `ORDER BY
  md5(seed || ':' || subject_id) LIMIT n_h` over the frozen pool), as `draw_plan` calls them;
* **`draw_plan`** — the whole service function: the core, plus the officer pool, recusals, the
  officers of each task, {args.draw_count:,} tasks with their officers, and the audit entry.

Against: `{PICK}` ($2 = {args.draw_count}) over the same pool, through asyncpg.

| | median (s) | / SQL pick (median of the rounds' ratios) | rounds (s) |
| --- | ---: | ---: | --- |
{row("draw's SQL core (freeze + allocation + subject draw)", core_seconds, core_ratios)}
{row("`draw_plan` (the whole draw, tasks included)", draw_seconds, draw_ratios)}
{row(PICK_LABEL, picks, None)}

Goal: the draw ≤ 2× the SQL pick.
"""
