"""Coverage (抽查覆盖率) of "double random, one public" inspection plans: per stratum, how large
the frozen pool is, how many were drawn, each member's chance of being drawn and the share of
the pool actually inspected — per plan, and per year over a bureau's plans.

The design draws n_h of the N_h members of stratum h uniformly (the first n_h by a seeded hash),
so a member's chance of being drawn is n_h / N_h exactly. Over a year a subject may sit in the
pools of several plans, drawn with different seeds; its chance of being drawn at least once is
1 − ∏ (1 − n_h / N_h) over its plans (the draws of different plans taken as independent).

Every figure is counted by PostgreSQL (GROUP BY over the frozen pool and the tasks); nothing is
summed here. Functions never commit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.problems import Conflict, NotFound
from services.registry.network import repository as network_repo
from services.registry.plans.coverage_schemas import PlanCoverage, YearCoverage
from services.registry.plans.models import InspectionPlan, PlanState

# Probabilities and shares are rounded to six decimals (a pool of a million still shows one member).
# One row per stratum the plan declares (its weight, in the plan's order) or that holds a member
# ("base" for the members no rule matched), and one total row (stratum NULL, GROUPING SETS).
_PLAN_STRATA = text(
    """
WITH declared AS (
    SELECT DISTINCT ON (code) code, weight, ord FROM (
        SELECT e.item ->> 'code' AS code, (e.item ->> 'weight')::numeric AS weight, e.ord
        FROM inspection_plan p, jsonb_array_elements(p.strata) WITH ORDINALITY AS e(item, ord)
        WHERE p.id = :plan_id
        UNION ALL
        SELECT 'base', 1, 2147483647
    ) s
    ORDER BY code, ord
),
counted AS (
    SELECT m.stratum,
           grouping(m.stratum) AS is_total,
           count(*) AS pool_size,
           count(t.id) AS drawn,
           count(t.id) FILTER (WHERE t.state = 'done') AS done
    FROM plan_pool_member m
    LEFT JOIN inspection_task t ON t.plan_id = m.plan_id AND t.subject_id = m.subject_id
    WHERE m.plan_id = :plan_id
    GROUP BY GROUPING SETS ((m.stratum), ())
)
SELECT coalesce(d.code, c.stratum) AS stratum,
       false AS is_total,
       coalesce(d.ord, 2147483646) AS ord,
       coalesce(d.weight, 1) AS weight,
       coalesce(c.pool_size, 0) AS pool_size,
       coalesce(c.drawn, 0) AS drawn,
       coalesce(c.done, 0) AS done,
       round(coalesce(c.drawn, 0)::numeric / nullif(c.pool_size, 0), 6) AS inclusion_probability,
       round(coalesce(c.done, 0)::numeric / nullif(c.pool_size, 0), 6) AS inspected_share
FROM declared d
FULL JOIN (SELECT * FROM counted WHERE is_total = 0) c ON c.stratum = d.code
WHERE d.code IS DISTINCT FROM 'base' OR c.stratum IS NOT NULL
UNION ALL
SELECT NULL, true, NULL, NULL, pool_size, drawn, done,
       round(drawn::numeric / nullif(pool_size, 0), 6),
       round(done::numeric / nullif(pool_size, 0), 6)
FROM counted WHERE is_total = 1
ORDER BY is_total, ord, stratum
"""
)

# The plans of the year: the bureau's own, or (subtree) every bureau's under it too; drawn ones.
# Every pool membership of those plans, with the member's chance in its plan (n_h / N_h), and
# every subject (PostgreSQL evaluates only the CTEs a statement reads).
_MEMBERSHIPS = """
WITH plans AS (SELECT id, subject_type FROM inspection_plan
    WHERE year = :year AND state <> 'draft'
      AND (bureau_id = :bureau_id OR (:subtree AND starts_with(bureau_path, :bureau_path)))
),
member AS (
    SELECT p.subject_type, m.plan_id, m.subject_id, m.stratum,
           t.id IS NOT NULL AS drawn, coalesce(t.state = 'done', false) AS done
    FROM plans p
    JOIN plan_pool_member m ON m.plan_id = p.id
    LEFT JOIN inspection_task t ON t.plan_id = m.plan_id AND t.subject_id = m.subject_id
),
chance AS (
    SELECT member.*,
           (count(*) FILTER (WHERE drawn) OVER w)::float8 / count(*) OVER w AS p
    FROM member
    WINDOW w AS (PARTITION BY plan_id, stratum)
),
-- Each subject once per type, with its chance of being drawn at least once: 1 − ∏(1 − p).
subject AS (
    SELECT subject_type, subject_id,
           bool_or(drawn) AS drawn, bool_or(done) AS done,
           CASE WHEN bool_or(p >= 1) THEN 1.0
                ELSE 1 - exp(coalesce(sum(ln(1 - p)) FILTER (WHERE p < 1), 0)) END AS chance
    FROM chance
    GROUP BY subject_type, subject_id
)
"""
_YEAR_STRATA = text(
    _MEMBERSHIPS
    + """
SELECT subject_type, stratum,
       count(DISTINCT plan_id) AS plans,
       count(*) AS pool_memberships,
       count(DISTINCT subject_id) AS subjects,
       count(*) FILTER (WHERE drawn) AS drawn,
       count(*) FILTER (WHERE done) AS done,
       round(count(*) FILTER (WHERE drawn)::numeric / count(*), 6) AS inclusion_probability,
       round(count(DISTINCT subject_id) FILTER (WHERE done)::numeric / count(DISTINCT subject_id), 6)
           AS inspected_share
FROM chance
GROUP BY subject_type, stratum
ORDER BY subject_type, stratum
"""
)
_YEAR_SUBJECTS = text(
    _MEMBERSHIPS
    + """
SELECT subject_type,
       count(*) AS subjects,
       count(*) FILTER (WHERE drawn) AS drawn_subjects,
       count(*) FILTER (WHERE done) AS inspected_subjects,
       round(avg(chance)::numeric, 6) AS mean_chance_drawn,
       round(count(*) FILTER (WHERE done)::numeric / count(*), 6) AS inspected_share
FROM subject
GROUP BY subject_type
ORDER BY subject_type
"""
)
_YEAR_PLAN_ROWS = text(
    """
WITH plans AS (SELECT id, subject_type FROM inspection_plan
    WHERE year = :year AND state <> 'draft'
      AND (bureau_id = :bureau_id OR (:subtree AND starts_with(bureau_path, :bureau_path)))
)
SELECT p.id, p.bureau_id, p.title, p.subject_type, p.state, p.drawn_on,
       coalesce(p.pool_size, 0) AS pool_size,
       count(t.id) AS drawn,
       count(t.id) FILTER (WHERE t.state = 'done') AS done
FROM inspection_plan p
JOIN plans USING (id)
LEFT JOIN inspection_task t ON t.plan_id = p.id
GROUP BY p.id
ORDER BY p.id
"""
)


def _probability(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


async def _rows(session: AsyncSession, statement: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    conn = await session.connection()
    return [dict(r) for r in (await conn.execute(statement, params)).mappings().all()]


async def plan_coverage(session: AsyncSession, plan: InspectionPlan) -> PlanCoverage:
    """The coverage of a drawn plan the route loaded in the principal's scope."""
    if plan.state == PlanState.DRAFT:
        raise Conflict(
            f"Inspection plan {plan.id} is not drawn yet: its pool is not frozen.", slug="plan-not-drawn"
        )
    rows = await _rows(session, _PLAN_STRATA, {"plan_id": plan.id})
    strata = [r for r in rows if not r["is_total"]]
    total = next((r for r in rows if r["is_total"]), None) or {
        "pool_size": 0,
        "drawn": 0,
        "done": 0,
        "inclusion_probability": None,
        "inspected_share": None,
    }
    return PlanCoverage.model_validate(
        {
            "plan_id": plan.id,
            "bureau_id": plan.bureau_id,
            "year": plan.year,
            "subject_type": plan.subject_type,
            "state": plan.state,
            "pool_size": total["pool_size"],
            "drawn": total["drawn"],
            "done": total["done"],
            "sampling_fraction": _probability(total["inclusion_probability"]),
            "inspected_share": _probability(total["inspected_share"]),
            "strata": [
                {
                    **r,
                    "inclusion_probability": _probability(r["inclusion_probability"]),
                    "inspected_share": _probability(r["inspected_share"]),
                }
                for r in strata
            ],
        }
    )


async def year_coverage(
    session: AsyncSession, principal: Principal, year: int, bureau_id: int | None, subtree: bool
) -> YearCoverage:
    """The coverage of a bureau's drawn plans of ``year``; the bureau in the principal's subtree
    (404 otherwise, like a missing one)."""
    bureau = await network_repo.get_bureau(session, bureau_id or principal.bureau_id)
    if bureau is None or not principal.in_scope(bureau.path):
        raise NotFound(f"Bureau {bureau_id} not found.")
    params = {"year": year, "bureau_id": bureau.id, "bureau_path": bureau.path, "subtree": subtree}
    plans = await _rows(session, _YEAR_PLAN_ROWS, params)
    strata = await _rows(session, _YEAR_STRATA, params)
    subjects = await _rows(session, _YEAR_SUBJECTS, params)
    return YearCoverage.model_validate(
        {
            "year": year,
            "bureau_id": bureau.id,
            "subtree": subtree,
            "plans": plans,
            "strata": [
                {
                    **r,
                    "inclusion_probability": _probability(r["inclusion_probability"]),
                    "inspected_share": _probability(r["inspected_share"]),
                }
                for r in strata
            ],
            "subjects": [
                {
                    **r,
                    "mean_chance_drawn": _probability(r["mean_chance_drawn"]),
                    "inspected_share": _probability(r["inspected_share"]),
                }
                for r in subjects
            ],
        }
    )
