"""The aggregates, in SQL: what each fact contributes, applied as deltas when a fact changes,
and recomputed from every fact by :func:`rebuild`.

One definition of the contributions serves both paths: ``flows`` (a measure, the day it
counts on, an amount) and ``stocks`` (a measure counted at each period's end from ``start_on``
until ``stop_on``: pending and overdue cases). A fact's change is one statement that reads
the old row, writes the new one and adds ``new − old`` contributions to every ancestor of the
fact's bureau (``INSERT … ON CONFLICT DO UPDATE SET amount = aggregate.amount + excluded.amount``:
two workers adding to the same row each add, neither overwrites). The rebuild computes every
figure from scratch (month by leaf bureau first, then periods, then ancestors; stocks as running
sums of their +1/−1 events) and upserts absolute amounts, zeroing rows no fact backs any more
(rows are never deleted: the changes feed reads them).

Event handlers hold a shared advisory lock; a rebuild holds it exclusively, so a rebuild never
overwrites a delta applied while it computed.
"""

# ruff: noqa: S608 - statements composed of this module's constant fragments; every value is bound

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.statistics.aggregates.measures import MEASURES

AGGREGATE_LOCK = "SELECT {fn}(hashtextextended('statistics.aggregate', 0))"
# A fact's change touches a few dozen rows, but the planner's guesses for the unnest and
# generate_series steps put it above jit_above_cost, and compiling it would cost ten times
# running it: JIT off for the event's transaction, set with the lock in one round trip.
SHARED_LOCK = text(
    "SELECT set_config('jit', 'off', true), "
    "pg_advisory_xact_lock_shared(hashtextextended('statistics.aggregate', 0))"
)
EXCLUSIVE_LOCK = text(AGGREGATE_LOCK.format(fn="pg_advisory_xact_lock"))

TODAY = "CAST(:today AS date)"
KINDS = (
    "(VALUES ('month', interval '1 month'), ('quarter', interval '3 months'), ('year', interval '1 year'))"
    " AS k(kind, step)"
)


def period_key(day: str, kind: str = "k.kind") -> str:
    """The period key (``2026-05`` / ``2026-Q2`` / ``2026``) of a date or timestamp expression."""
    return (
        f"CASE {kind} WHEN 'month' THEN to_char({day}, 'YYYY-MM') "
        f"WHEN 'quarter' THEN to_char({day}, 'YYYY-\"Q\"Q') ELSE to_char({day}, 'YYYY') END"
    )


# Every ancestor of a bureau path ("1.5.23." → 1, 5, 23) with its own path.
ANCESTORS = """CROSS JOIN LATERAL (
        SELECT CAST(t.part AS bigint) AS id, array_to_string(p.parts[1:t.n], '.') || '.' AS path
        FROM (SELECT string_to_array(rtrim({alias}.bureau_path, '.'), '.') AS parts) AS p,
             unnest(p.parts) WITH ORDINALITY AS t(part, n)
    ) AS a"""


# --- contributions of each fact kind, over a source relation of (sign, fact columns…) --------


def _case_ctes(src: str) -> tuple[str, str]:
    """(flows, stocks) CTE bodies of case facts."""
    dims = f"""SELECT s.sign, s.bureau_path, d.dimension, d.value, s.opened_on, s.decided_on, s.closed_on,
               s.fine_current, s.paid_total, s.confiscation, s.transferred_to_judicial_organ,
               s.needs_filing, s.filing_due, s.filed_on, s.next_due
        FROM {src} AS s CROSS JOIN LATERAL (
            SELECT 'all'::text AS dimension, ''::text AS value
            UNION ALL SELECT 'system', coalesce(s.system, 'unknown')
            UNION ALL SELECT 'subject_type', s.subject_type
            UNION ALL SELECT 'violation', s.violation_code WHERE s.violation_code IS NOT NULL
            UNION ALL SELECT 'penalty_type', pk FROM unnest(s.penalty_kinds) AS pk
        ) AS d"""
    flows = f"""SELECT cd.sign, cd.bureau_path, cd.dimension, cd.value, i.measure, i.on_date, i.amount
        FROM ({dims}) AS cd CROSS JOIN LATERAL (VALUES
            ('cases_opened', cd.opened_on, 1::numeric),
            ('cases_closed', cd.closed_on, 1),
            ('fines_decided', cd.decided_on, cd.fine_current),
            ('fines_collected', cd.decided_on, cd.paid_total),
            ('confiscations', cd.decided_on, cd.confiscation),
            ('transfers_judicial', CASE WHEN cd.transferred_to_judicial_organ THEN cd.closed_on END, 1),
            ('major_cases', CASE WHEN cd.needs_filing THEN coalesce(cd.decided_on, cd.closed_on) END, 1),
            ('major_filed_on_time', CASE WHEN cd.filed_on <= cd.filing_due THEN cd.filed_on END, 1),
            ('major_filed_late', CASE WHEN cd.filed_on > cd.filing_due THEN cd.filed_on END, 1),
            ('major_filing_missing',
             CASE WHEN cd.needs_filing AND cd.filed_on IS NULL THEN cd.filing_due END, 1)
        ) AS i(measure, on_date, amount)
        WHERE i.on_date IS NOT NULL AND i.amount <> 0"""
    # A stock counts at a period's end E (E = today for the running period) when
    # start_on <= E and (stop_on is null or stop_on > E); what starts after today counts nowhere.
    stocks = f"""SELECT cd.sign, cd.bureau_path, cd.dimension, cd.value, st.measure, st.start_on, st.stop_on
        FROM ({dims}) AS cd CROSS JOIN LATERAL (VALUES
            ('cases_pending', cd.opened_on, cd.closed_on),
            ('cases_overdue',
             CASE WHEN cd.next_due IS NOT NULL THEN greatest(cd.opened_on, cd.next_due + 1) END,
             cd.closed_on)
        ) AS st(measure, start_on, stop_on)
        WHERE st.start_on <= {TODAY} AND (st.stop_on IS NULL OR st.stop_on > st.start_on)"""
    return flows, stocks


def _lead_ctes(src: str) -> tuple[str, str | None]:
    flows = f"""SELECT s.sign, s.bureau_path, d.dimension, d.value, 'leads_received'::text AS measure,
               s.received_on AS on_date, 1::numeric AS amount
        FROM {src} AS s CROSS JOIN LATERAL (
            SELECT 'all'::text AS dimension, ''::text AS value
            UNION ALL SELECT 'system', coalesce(s.system, 'unknown')
            UNION ALL SELECT 'subject_type', s.subject_type
        ) AS d"""
    return flows, None


def _certificate_ctes(src: str) -> tuple[str, str | None]:
    flows = f"""SELECT s.sign, s.bureau_path, d.dimension, d.value,
               CASE s.to_status WHEN 'suspended' THEN 'certificates_suspended'
                    ELSE 'certificates_revoked' END AS measure,
               s.changed_on AS on_date, 1::numeric AS amount
        FROM {src} AS s CROSS JOIN LATERAL (
            SELECT 'all'::text AS dimension, ''::text AS value
            UNION ALL SELECT 'system', coalesce(s.system, 'unknown')
            UNION ALL SELECT 'subject_type', 'certificate'
        ) AS d
        WHERE s.to_status IN ('suspended', 'revoked')"""
    return flows, None


CONTRIBUTIONS = {
    "case_fact": _case_ctes,
    "lead_fact": _lead_ctes,
    "certificate_status_fact": _certificate_ctes,
}
# The measures the facts give (a rebuild zeroes only these: another domain's measures kept in
# the same table are not the facts' to zero).
FACT_MEASURES = sorted(m.name for m in MEASURES if m.source in CONTRIBUTIONS)
STOCK_MEASURES = sorted(m.name for m in MEASURES if m.source in CONTRIBUTIONS and m.kind == "stock")
KEYS = {"case_fact": "case_id", "lead_fact": "lead_id", "certificate_status_fact": "event_id"}


# --- a fact's change, applied as deltas ---------------------------------------------------

_UPSERT_DELTAS = """INSERT INTO aggregate
        (bureau_id, period, dimension, value, measure, bureau_path, period_kind, amount, updated_at)
    SELECT bureau_id, period, dimension, value, measure, bureau_path, period_kind, amount, clock_timestamp()
    FROM grouped
    ORDER BY bureau_id, period, dimension, value, measure
    ON CONFLICT (bureau_id, period, dimension, value, measure)
    DO UPDATE SET amount = aggregate.amount + excluded.amount, updated_at = excluded.updated_at
    RETURNING 1"""


def change_statement(table: str, old_where: str, change: str, *, deleting: bool = False) -> str:
    """One statement: ``change`` (an INSERT/UPDATE/DELETE … RETURNING * of ``table``) and the
    aggregates' deltas it causes. Answers (changed, written): fact rows changed, aggregate rows
    touched. ``old_where`` selects the rows ``change`` may touch, as they were before it."""
    key = KEYS[table]
    if deleting:
        source = "SELECT -1 AS sign, up.* FROM up"
    else:
        source = (
            f"SELECT -1 AS sign, old.* FROM old WHERE old.{key} IN (SELECT {key} FROM up) "
            "UNION ALL SELECT 1 AS sign, up.* FROM up"
        )
    flows, stocks = CONTRIBUTIONS[table]("src")
    stock_part = ""
    if stocks is not None:
        stock_part = f"""
        UNION ALL
        SELECT st.sign, st.bureau_path, st.dimension, st.value, st.measure, k.kind,
               {period_key("ps")} AS period, 1::numeric AS amount
        FROM ({stocks}) AS st CROSS JOIN {KINDS}
        CROSS JOIN LATERAL generate_series(
            date_trunc(k.kind, CAST(st.start_on AS timestamp)),
            date_trunc(k.kind, CAST({TODAY} AS timestamp)),
            k.step) AS ps
        WHERE st.stop_on IS NULL
           OR st.stop_on > least(CAST(ps + k.step - interval '1 day' AS date), {TODAY})"""
    return f"""WITH old AS (SELECT * FROM {table} WHERE {old_where}),
    up AS ({change}),
    src AS ({source}),
    contrib AS (
        SELECT f.sign, f.bureau_path, f.dimension, f.value, f.measure, k.kind,
               {period_key("f.on_date")} AS period, f.amount
        FROM ({flows}) AS f CROSS JOIN {KINDS}{stock_part}
    ),
    grouped AS (
        SELECT a.id AS bureau_id, a.path AS bureau_path, c.kind AS period_kind, c.period, c.dimension,
               c.value, c.measure, sum(c.sign * c.amount) AS amount
        FROM contrib AS c {ANCESTORS.format(alias="c")}
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        HAVING sum(c.sign * c.amount) <> 0
    ),
    written AS ({_UPSERT_DELTAS})
    SELECT (SELECT count(*) FROM up) AS changed, (SELECT count(*) FROM written) AS written"""


async def apply_change(
    conn: AsyncConnection, statement: Any, params: dict[str, Any], *, today: date
) -> tuple[int, int]:
    """Run a :func:`change_statement` under the shared aggregate lock: (changed, written)."""
    await conn.execute(SHARED_LOCK)
    row = (await conn.execute(statement, {**params, "today": today})).one()
    return int(row.changed), int(row.written)


# --- every figure, from every fact ------------------------------------------------------


def figures_query(*, stocks_only: bool = False) -> str:
    """SELECT every aggregate figure (non-zero) from the facts: (bureau_id, bureau_path,
    period_kind, period, dimension, value, measure, amount). Needs ``:today``.

    ``stocks_only``: the pending and overdue figures alone, from the cases still open on
    ``:since`` (a case closed before it adds its +1 and its −1 before it: nothing from then on),
    exact for every period starting on or after ``:since``."""
    if stocks_only:
        open_cases = (
            "(SELECT 1 AS sign, * FROM case_fact "
            "WHERE closed_on IS NULL OR closed_on >= CAST(:since AS date))"
        )
        case_flows, stocks = CONTRIBUTIONS["case_fact"](open_cases)
        flows = f"SELECT * FROM ({case_flows}) AS no_flows WHERE false"
    else:
        parts = {
            table: build("(SELECT 1 AS sign, * FROM " + table + ")") for table, build in CONTRIBUTIONS.items()
        }
        flows = " UNION ALL ".join(f"({f})" for f, _ in parts.values())
        stocks = " UNION ALL ".join(f"({s})" for _, s in parts.values() if s is not None)
    return f"""WITH
    flow_leaf AS (
        SELECT f.bureau_path, f.dimension, f.value, f.measure,
               date_trunc('month', CAST(f.on_date AS timestamp)) AS m, sum(f.sign * f.amount) AS amount
        FROM ({flows}) AS f
        GROUP BY 1, 2, 3, 4, 5
    ),
    stock_leaf AS (
        SELECT st.bureau_path, st.dimension, st.value, st.measure,
               date_trunc('month', CAST(e.on_date AS timestamp)) AS m, sum(st.sign * e.delta) AS amount
        FROM ({stocks}) AS st CROSS JOIN LATERAL (VALUES
            (st.start_on, 1), (CASE WHEN st.stop_on <= {TODAY} THEN st.stop_on END, -1)
        ) AS e(on_date, delta)
        WHERE e.on_date IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5
    ),
    flow_anc AS (
        SELECT a.id, a.path, k.kind, date_trunc(k.kind, l.m) AS ps, l.dimension, l.value, l.measure,
               sum(l.amount) AS amount
        FROM flow_leaf AS l CROSS JOIN {KINDS} {ANCESTORS.format(alias="l")}
        GROUP BY 1, 2, 3, 4, 5, 6, 7
    ),
    stock_anc AS (
        SELECT a.id, a.path, k.kind, k.step, date_trunc(k.kind, l.m) AS ps, l.dimension, l.value,
               l.measure, sum(l.amount) AS amount
        FROM stock_leaf AS l CROSS JOIN {KINDS} {ANCESTORS.format(alias="l")}
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ),
    stock_cum AS (
        SELECT id, path, kind, step, ps, dimension, value, measure,
               sum(amount) OVER w AS amount, lead(ps) OVER w AS next_ps
        FROM stock_anc
        WINDOW w AS (PARTITION BY id, kind, dimension, value, measure ORDER BY ps)
    )
    SELECT id AS bureau_id, path AS bureau_path, kind AS period_kind, {period_key("ps", "kind")} AS period,
           dimension, value, measure, amount
    FROM flow_anc WHERE amount <> 0
    UNION ALL
    SELECT c.id, c.path, c.kind, {period_key("g", "c.kind")}, c.dimension, c.value, c.measure, c.amount
    FROM stock_cum AS c CROSS JOIN LATERAL generate_series(
        c.ps, coalesce(c.next_ps - c.step, date_trunc(c.kind, CAST({TODAY} AS timestamp))), c.step) AS g
    WHERE c.amount <> 0"""


_KEY = "(bureau_id, period, dimension, value, measure)"


async def rebuild(
    conn: AsyncConnection,
    *,
    today: date,
    periods: list[str] | None = None,
    stocks_since: date | None = None,
) -> dict[str, int]:
    """Recompute the figures (of ``periods`` only, when given) from every fact, in the caller's
    transaction (commit it). One statement: the figures computed from the facts, full-joined with
    the stored ones, and only the differences upserted — a new figure inserted, a changed one
    updated, one no fact backs any more set to 0 (never deleted). Answers the rows written and,
    of them, those zeroed. ``stocks_since`` (with ``periods`` starting on or after it): the
    pending and overdue figures alone, from the cases open since then."""
    if stocks_since is not None and periods is None:
        raise ValueError("stocks_since needs the periods it is exact for")
    measures = STOCK_MEASURES if stocks_since is not None else FACT_MEASURES
    await conn.execute(EXCLUSIVE_LOCK)
    only = "" if periods is None else " AND period = ANY(CAST(:periods AS text[]))"
    row = (
        await conn.execute(
            text(
                f"""WITH written AS (
                INSERT INTO aggregate (bureau_id, period, dimension, value, measure,
                    bureau_path, period_kind, amount, updated_at)
                SELECT coalesce(r.bureau_id, a.bureau_id), coalesce(r.period, a.period),
                       coalesce(r.dimension, a.dimension), coalesce(r.value, a.value),
                       coalesce(r.measure, a.measure), coalesce(r.bureau_path, a.bureau_path),
                       coalesce(r.period_kind, a.period_kind), coalesce(r.amount, 0), clock_timestamp()
                FROM (SELECT * FROM ({figures_query(stocks_only=stocks_since is not None)}) AS f
                      WHERE true{only}) AS r
                FULL JOIN (
                    SELECT bureau_id, period, dimension, value, measure, bureau_path, period_kind, amount
                    FROM aggregate WHERE measure = ANY(CAST(:measures AS text[])){only}
                ) AS a
                  ON r.bureau_id = a.bureau_id AND r.period = a.period AND r.dimension = a.dimension
                 AND r.value = a.value AND r.measure = a.measure
                WHERE coalesce(r.amount, 0) IS DISTINCT FROM a.amount
                ORDER BY 1, 2, 3, 4, 5
                ON CONFLICT {_KEY} DO UPDATE SET amount = excluded.amount, updated_at = excluded.updated_at
                RETURNING amount)
            SELECT count(*) AS written, count(*) FILTER (WHERE amount = 0) AS zeroed FROM written"""
            ),
            {
                "today": today,
                "measures": measures,
                **({} if periods is None else {"periods": periods}),
                **({} if stocks_since is None else {"since": stocks_since}),
            },
        )
    ).one()
    return {"written": int(row.written), "zeroed": int(row.zeroed)}


def current_periods(today: date) -> list[str]:
    """The periods whose running figures move with the day: today's, and yesterday's (which
    just ended when the month, quarter or year turned)."""
    from datetime import timedelta

    keys: set[str] = set()
    for day in (today, today - timedelta(days=1)):
        keys |= {f"{day:%Y-%m}", f"{day.year}-Q{(day.month - 1) // 3 + 1}", f"{day.year}"}
    return sorted(keys)
