"""The draw of an inspection plan (双随机): reproducible by anyone holding the frozen pool and
the seed.

The algorithm, as implemented here and re-run by ``verify``:

1. **Freeze.** The pool's members — the registry records of the plan's subject type that
   match its filter within the bureau's subtree — ordered by id, numbered 1..N, each with
   its stratum: the first of the plan's risk strata whose rule the member meets, else
   ``base`` (weight 1). The pool's digest is the SHA-256 of the lines
   ``position,subject_id,stratum\\n``. The officer pool: the active supervision officers of
   the subtree holding an enforcement credential, ordered by id, with their bureau's
   division; digest of ``position,officer_id,division\\n``.
2. **Allocate.** n = the plan's count, or ⌈share × N⌉. Stratum h of size N_h and weight
   w_h gets n × N_h·w_h / Σ N_k·w_k, rounded by largest remainder (ties to the earlier
   stratum), never more than N_h (what a stratum cannot take goes to the others by the same
   rule). Each member of stratum h is drawn with probability exactly n_h / N_h.
3. **Draw the subjects.** In each stratum, members in ascending order of the hex text
   ``md5(seed || ':' || subject_id)``; the first n_h. Draw order: strata as the plan lists
   them (``base`` last), keys ascending within each.
4. **Draw the officers.** For each drawn subject in draw order: the officer pool without
   the officers recused from it — fixed at the draw in ``plan_recusal``: those who inspected
   it under the bureau's previous plan of the same subject type, and those who declared a
   conflict with it — and, when the plan keeps to divisions, without officers of another
   division; in ascending order of ``md5(seed || ':' || subject_id || ':' || officer_id)``;
   the first ``officers_per_task``.

The seed is drawn from the operating system's random source at the moment of the draw and
recorded with the plan, so no one chooses it after seeing the pool.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.problems import Conflict
from services.registry.plans.models import InspectionPlan, PlanSubject

BASE = "base"

# Where each subject type lives, and its division column (None: it has none of its own).
SUBJECT_TABLES = {
    PlanSubject.CERTIFICATE: ("certificate", "s.division_code"),
    PlanSubject.ENTERPRISE: ("enterprise", "s.division_code"),
    PlanSubject.BODY: ("certification_body", "NULL"),
    PlanSubject.AUDITOR: ("auditor", "NULL"),
}

# The pool filter's fields, per subject type: field → SQL condition on the subject `s`.
POOL_FILTERS: dict[PlanSubject, dict[str, str]] = {
    PlanSubject.CERTIFICATE: {
        "scheme": "s.scheme = :scheme",
        "status": "s.status = :status",
        "division_code": "s.division_code LIKE :division_code",
        "product_category": (
            "EXISTS (SELECT 1 FROM certificate_product cp JOIN product p ON p.id = cp.product_id "
            "WHERE cp.certificate_id = s.id AND p.category_code = :product_category)"
        ),
    },
    PlanSubject.ENTERPRISE: {
        "status": "s.status = :status",
        "division_code": "s.division_code LIKE :division_code",
    },
    PlanSubject.BODY: {"status": "s.status = :status"},
    PlanSubject.AUDITOR: {"status": "s.status = :status"},
}
DEFAULT_STATUS = {
    PlanSubject.CERTIFICATE: "valid",
    PlanSubject.ENTERPRISE: "active",
    PlanSubject.BODY: "approved",
    PlanSubject.AUDITOR: "registered",
}

# Risk rules a stratum can name, per subject type: SQL on the subject `s`, with :since (the
# first day of the period the rule looks back over) and :plan_start. Rules over other tables
# are written `s.id IN (subquery)`: PostgreSQL hashes the subquery's ids once, where an
# EXISTS would probe an index for every member of a pool of millions.
_SUSPENDED = (
    "SELECT h.certificate_id FROM certificate_status_change h "
    "WHERE h.to_status = 'suspended' AND h.changed_at >= :since"
)
_CASES = (
    "SELECT h.certificate_id FROM certificate_status_change h "
    "WHERE h.case_ref IS NOT NULL AND h.changed_at >= :since"
)
RISK_RULES: dict[PlanSubject, dict[str, str]] = {
    PlanSubject.CERTIFICATE: {
        "recent_suspension": f"s.id IN ({_SUSPENDED})",
        "case_record": f"s.id IN ({_CASES})",
        # A management-system certificate whose yearly surveillance is more than 12 months late.
        "surveillance_overdue": (
            "s.scheme <> 'ccc' AND s.status = 'valid' "
            "AND COALESCE(s.last_surveillance_on, s.issued_on) "
            "< (CAST(:plan_start AS date) - interval '12 months')"
        ),
    },
    PlanSubject.ENTERPRISE: {
        "recent_suspension": f"s.id IN (SELECT c.holder_id FROM certificate c WHERE c.id IN ({_SUSPENDED}))",
        "case_record": f"s.id IN (SELECT c.holder_id FROM certificate c WHERE c.id IN ({_CASES}))",
    },
    PlanSubject.BODY: {
        "recent_suspension": f"s.id IN (SELECT c.body_id FROM certificate c WHERE c.id IN ({_SUSPENDED}))",
        "case_record": f"s.id IN (SELECT c.body_id FROM certificate c WHERE c.id IN ({_CASES}))",
    },
    PlanSubject.AUDITOR: {"revoked_before": "s.status = 'revoked'"},
}


@dataclass(frozen=True, slots=True)
class Drawn:
    """One drawn subject with its officers, as the algorithm gives it."""

    draw_order: int
    subject_id: int
    stratum: str
    division_code: str | None
    officer_ids: tuple[int, ...]


def new_seed() -> str:
    return secrets.token_hex(16)


def key(*parts: object) -> str:
    """The ordering key of the draw: md5 of the parts joined by ':' (as PostgreSQL's md5())."""
    return hashlib.md5(":".join(str(p) for p in parts).encode()).hexdigest()  # noqa: S324 - an ordering, not a secret


def allocate(n: int, sizes: dict[str, int], weights: dict[str, float]) -> dict[str, int]:
    """n over the strata in proportion to size × weight, by largest remainder, capped at size."""
    order = list(sizes)
    alloc = dict.fromkeys(order, 0)
    remaining = min(n, sum(sizes.values()))
    open_ = [h for h in order if sizes[h] > 0]
    while remaining > 0 and open_:
        total = sum(sizes[h] * weights[h] for h in open_)
        shares = {h: remaining * sizes[h] * weights[h] / total for h in open_}
        floors = {h: min(math.floor(shares[h]), sizes[h] - alloc[h]) for h in open_}
        given = sum(floors.values())
        for h in open_:
            alloc[h] += floors[h]
        left = remaining - given
        # Largest remainders first; a tie goes to the stratum listed first.
        for h in sorted(open_, key=lambda h: (-(shares[h] - math.floor(shares[h])), order.index(h))):
            if left == 0:
                break
            if alloc[h] < sizes[h]:
                alloc[h] += 1
                left -= 1
        remaining = left
        open_ = [h for h in open_ if alloc[h] < sizes[h]]
    return alloc


def plan_strata(plan: InspectionPlan) -> list[dict[str, Any]]:
    return [*plan.strata, {"code": BASE, "rule": None, "weight": 1}]


async def freeze_pool(conn: AsyncConnection, plan: InspectionPlan) -> tuple[int, str]:
    """Write the frozen pool; its size and digest."""
    table, division = SUBJECT_TABLES[plan.subject_type]
    filters = {"status": DEFAULT_STATUS[plan.subject_type], **(plan.pool_filter or {})}
    where = ["s.bureau_path LIKE :path"]
    params: dict[str, Any] = {"plan_id": plan.id, "path": plan.bureau_path + "%"}
    for name, value in filters.items():
        if value is None:
            continue
        where.append(POOL_FILTERS[plan.subject_type][name])
        params[name] = f"{value}%" if name == "division_code" else value
    cases = []
    for index, stratum in enumerate(plan.strata):
        cases.append(f"WHEN {RISK_RULES[plan.subject_type][stratum['rule']]} THEN :stratum_{index}")
        params[f"stratum_{index}"] = stratum["code"]
    params["since"], params["plan_start"] = _since(plan)
    stratum_sql = f"CASE {' '.join(cases)} ELSE '{BASE}' END" if cases else f"'{BASE}'"
    # Every fragment above is fixed text of this module; the plan's values are parameters.
    await conn.execute(
        text(
            "INSERT INTO plan_pool_member (plan_id, position, subject_id, stratum, division_code) "
            f"SELECT :plan_id, row_number() OVER (ORDER BY s.id), s.id, {stratum_sql}, {division} "
            f"FROM {table} s WHERE {' AND '.join(where)}"
        ),
        params,
    )
    row = (
        await conn.execute(
            text(
                "SELECT count(*), encode(sha256(convert_to(coalesce(string_agg("
                "position || ',' || subject_id || ',' || stratum || E'\\n', '' ORDER BY position), ''), "
                "'UTF8')), 'hex') FROM plan_pool_member WHERE plan_id = :plan_id"
            ),
            {"plan_id": plan.id},
        )
    ).one()
    return int(row[0]), row[1]


def _since(plan: InspectionPlan) -> tuple[date, date]:
    start = date(plan.year, 1, 1)
    years = max((int(s.get("years") or 3) for s in plan.strata), default=3)
    return date(plan.year - years, 1, 1), start


async def freeze_officers(conn: AsyncConnection, plan: InspectionPlan) -> tuple[int, str]:
    await conn.execute(
        text(
            "INSERT INTO plan_officer (plan_id, position, officer_id, division_code) "
            "SELECT :plan_id, row_number() OVER (ORDER BY o.id), o.id, b.division_code "
            "FROM officer o JOIN bureau b ON b.id = o.bureau_id "
            "WHERE o.active AND o.body = 'supervision' AND o.credential_number IS NOT NULL "
            "AND b.path LIKE :path"
        ),
        {"plan_id": plan.id, "path": plan.bureau_path + "%"},
    )
    row = (
        await conn.execute(
            text(
                "SELECT count(*), encode(sha256(convert_to(coalesce(string_agg("
                "position || ',' || officer_id || ',' || coalesce(division_code, '') || E'\\n', '' "
                "ORDER BY position), ''), 'UTF8')), 'hex') FROM plan_officer WHERE plan_id = :plan_id"
            ),
            {"plan_id": plan.id},
        )
    ).one()
    return int(row[0]), row[1]


async def stratum_sizes(conn: AsyncConnection, plan: InspectionPlan) -> dict[str, int]:
    rows = await conn.execute(
        text("SELECT stratum, count(*) FROM plan_pool_member WHERE plan_id = :p GROUP BY stratum"),
        {"p": plan.id},
    )
    counted = {r[0]: int(r[1]) for r in rows}
    return {s["code"]: counted.get(s["code"], 0) for s in plan_strata(plan)}


def wanted(plan: InspectionPlan, pool_size: int) -> int:
    if plan.draw_count is not None:
        return min(plan.draw_count, pool_size)
    return min(math.ceil(float(plan.draw_share or 0) * pool_size), pool_size)


async def draw_subjects(conn: AsyncConnection, plan: InspectionPlan, allocation: dict[str, int], seed: str):
    """(subject_id, stratum, division_code) in draw order."""
    drawn = []
    for stratum in plan_strata(plan):
        n = allocation.get(stratum["code"], 0)
        if n == 0:
            continue
        rows = await conn.execute(
            text(
                "SELECT subject_id, stratum, division_code FROM plan_pool_member "
                "WHERE plan_id = :p AND stratum = :h "
                "ORDER BY md5(:seed || ':' || subject_id) COLLATE \"C\" LIMIT :n"
            ),
            {"p": plan.id, "h": stratum["code"], "seed": seed, "n": n},
        )
        drawn += [(int(r[0]), r[1], r[2]) for r in rows]
    return drawn


async def freeze_recusals(conn: AsyncConnection, plan: InspectionPlan, subject_ids: list[int]) -> None:
    """Who may not inspect which drawn subject: the bureau's previous plan of the same subject
    type, and declared conflicts."""
    if not subject_ids:
        return
    await conn.execute(
        text(
            "INSERT INTO plan_recusal (plan_id, officer_id, subject_id, reason) "
            "SELECT DISTINCT CAST(:p AS bigint), tof.officer_id, t.subject_id, 'previous_plan' "
            "FROM inspection_task t JOIN inspection_task_officer tof ON tof.task_id = t.id "
            "WHERE t.plan_id = (SELECT max(id) FROM inspection_plan q WHERE q.bureau_id = :bureau "
            "  AND q.subject_type = :type AND q.state <> 'draft' AND q.id < CAST(:p AS bigint)) "
            "AND t.subject_id = ANY(:ids) "
            "ON CONFLICT DO NOTHING"
        ),
        {"p": plan.id, "bureau": plan.bureau_id, "type": plan.subject_type, "ids": subject_ids},
    )
    await conn.execute(
        text(
            "INSERT INTO plan_recusal (plan_id, officer_id, subject_id, reason) "
            "SELECT :p, c.officer_id, c.subject_id, 'declared_conflict' FROM officer_conflict c "
            "WHERE c.subject_type = :type AND c.subject_id = ANY(:ids) ON CONFLICT DO NOTHING"
        ),
        {"p": plan.id, "type": plan.subject_type, "ids": subject_ids},
    )


async def frozen_officers(conn: AsyncConnection, plan_id: int) -> list[tuple[int, str | None]]:
    rows = await conn.execute(
        text("SELECT officer_id, division_code FROM plan_officer WHERE plan_id = :p ORDER BY position"),
        {"p": plan_id},
    )
    return [(int(r[0]), r[1]) for r in rows]


async def frozen_recusals(conn: AsyncConnection, plan_id: int) -> set[tuple[int, int]]:
    rows = await conn.execute(
        text("SELECT officer_id, subject_id FROM plan_recusal WHERE plan_id = :p"), {"p": plan_id}
    )
    return {(int(r[0]), int(r[1])) for r in rows}


def draw_officers(
    plan: InspectionPlan,
    seed: str,
    subjects: list[tuple[int, str, str | None]],
    officers: list[tuple[int, str | None]],
    recusals: set[tuple[int, int]],
) -> list[Drawn]:
    drawn = []
    for order, (subject_id, stratum, division) in enumerate(subjects, start=1):
        eligible = [
            officer_id
            for officer_id, officer_division in officers
            if (officer_id, subject_id) not in recusals
            and not (plan.same_division and division is not None and officer_division != division)
        ]
        chosen = sorted(eligible, key=lambda officer_id: key(seed, subject_id, officer_id))
        if len(chosen) < plan.officers_per_task:
            raise Conflict(
                f"Only {len(chosen)} officers of the pool may inspect {plan.subject_type} {subject_id}; "
                f"the plan needs {plan.officers_per_task}.",
                slug="not-enough-officers",
                subject_id=subject_id,
            )
        drawn.append(Drawn(order, subject_id, stratum, division, tuple(chosen[: plan.officers_per_task])))
    return drawn
