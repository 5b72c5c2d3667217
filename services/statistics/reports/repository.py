"""Every SQL statement of statistical reports.

Reads run on the asyncpg connection (the request's pooled one, or the session's own inside a
write), so a pull is a few round trips of plain SQL; writes go through the session.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.db import Database, DriverQuery

REPORT_COLUMNS = (
    "id, bureau_id, bureau_path, bureau_name, period, period_kind, revision, state, supersedes_id, "
    "correction_reason, due_on, created_at, figures_taken_at, submitted_at, submitted_on, submitted_by"
)


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside its transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection  # type: ignore[return-value]


# The f-strings below insert REPORT_COLUMNS (a constant) or column names of this module's own
# dicts; every value is a parameter.

# --- reads (asyncpg) -------------------------------------------------------------------


async def report(conn: asyncpg.Connection, report_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {REPORT_COLUMNS}, document, etag FROM statistical_report WHERE id = $1",  # noqa: S608
        report_id,
    )


async def newest_submitted(conn: asyncpg.Connection, bureau_id: int, period: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {REPORT_COLUMNS}, document, etag FROM statistical_report "  # noqa: S608
        "WHERE bureau_id = $1 AND period = $2 AND state = 'submitted' ORDER BY revision DESC LIMIT 1",
        bureau_id,
        period,
    )


# A scheduled pull of a submitted report, in one statement: the stored document (left out when
# the client's If-None-Match already names its ETag).
PULL_SUBMITTED = DriverQuery(
    sql=(
        "SELECT bureau_path, etag, CASE WHEN $3 OR etag = ANY($4::text[]) THEN NULL ELSE document END "
        "AS document FROM statistical_report WHERE bureau_id = $1 AND period = $2 AND state = 'submitted' "
        "ORDER BY revision DESC LIMIT 1"
    ),
    names=("bureau_id", "period", "any_tag", "tags"),
    defaults={},
)


async def pull_submitted(
    database: Database, bureau_id: int, period: str, tags: list[str], any_tag: bool
) -> asyncpg.Record | None:
    return await database.fetch_one(
        PULL_SUBMITTED, bureau_id=bureau_id, period=period, any_tag=any_tag, tags=tags
    )


async def bureau(conn: asyncpg.Connection, bureau_id: int) -> tuple[str, str | None] | None:
    """(path, name) of a bureau statistics knows: from its bureau dimension, else its aggregates."""
    row = await conn.fetchrow(
        "SELECT bureau_path, name FROM bureau_dimension WHERE bureau_id = $1 "
        "UNION ALL (SELECT bureau_path, NULL FROM aggregate WHERE bureau_id = $1 LIMIT 1) LIMIT 1",
        bureau_id,
    )
    return (row["bureau_path"], row["name"]) if row else None


async def report_figures(conn: asyncpg.Connection, report_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT measure, dimension, value, amount FROM report_figure WHERE report_id = $1 "
        "ORDER BY measure, dimension, value",
        report_id,
    )


async def live_figures(conn: asyncpg.Connection, bureau_id: int, period: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT measure, dimension, value, amount FROM aggregate WHERE bureau_id = $1 AND period = $2 "
        "ORDER BY measure, dimension, value",
        bureau_id,
        period,
    )


async def children(
    conn: asyncpg.Connection, bureau_id: int, period: str, cutoff: datetime | None
) -> list[asyncpg.Record]:
    """The direct subordinate bureaus, each with its newest revision submitted (by ``cutoff``)."""
    return await conn.fetch(
        """
        SELECT d.bureau_id, d.name AS bureau_name, r.id AS report_id, r.revision, r.submitted_at
          FROM bureau_dimension d
          LEFT JOIN LATERAL (
                SELECT id, revision, submitted_at FROM statistical_report s
                 WHERE s.bureau_id = d.bureau_id AND s.period = $2 AND s.state = 'submitted'
                   AND ($3::timestamptz IS NULL OR s.submitted_at <= $3)
                 ORDER BY s.revision DESC LIMIT 1) r ON true
         WHERE d.parent_id = $1
         ORDER BY d.bureau_id
        """,
        bureau_id,
        period,
        cutoff,
    )


async def summed_figures(conn: asyncpg.Connection, report_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT measure, dimension, value, sum(amount) AS amount FROM report_figure "
        "WHERE report_id = ANY($1::bigint[]) GROUP BY measure, dimension, value",
        report_ids,
    )


async def trend_figures(
    conn: asyncpg.Connection, bureau_id: int, periods: list[str], measures: list[str]
) -> list[asyncpg.Record]:
    """The `all` figures of ``measures`` per period: the newest submitted revision's, else the
    live aggregates'."""
    return await conn.fetch(
        """
        SELECT p.period, m.measure,
               coalesce(
                   (SELECT f.amount FROM report_figure f
                     WHERE f.report_id = r.id AND f.dimension = 'all' AND f.value = ''
                       AND f.measure = m.measure),
                   CASE WHEN r.id IS NULL THEN
                       (SELECT a.amount FROM aggregate a
                         WHERE a.bureau_id = $1 AND a.period = p.period AND a.dimension = 'all'
                           AND a.value = '' AND a.measure = m.measure)
                   END) AS amount
          FROM unnest($2::text[]) WITH ORDINALITY AS p(period, n)
         CROSS JOIN unnest($3::text[]) AS m(measure)
          LEFT JOIN LATERAL (
                SELECT id FROM statistical_report s
                 WHERE s.bureau_id = $1 AND s.period = p.period AND s.state = 'submitted'
                 ORDER BY s.revision DESC LIMIT 1) r ON true
         ORDER BY p.n, m.measure
        """,
        bureau_id,
        periods,
        measures,
    )


async def list_reports(
    conn: asyncpg.Connection, prefix_pattern: str, filters: dict[str, Any], after: int | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""
        SELECT {REPORT_COLUMNS} FROM statistical_report
         WHERE bureau_path LIKE $1 ESCAPE '/'
           AND ($2::bigint IS NULL OR bureau_id = $2)
           AND ($3::text IS NULL OR period = $3)
           AND ($4::text IS NULL OR state = $4)
           AND ($5::bigint IS NULL OR id > $5)
         ORDER BY id LIMIT $6
        """,  # noqa: S608
        prefix_pattern,
        filters.get("bureau_id"),
        filters.get("period"),
        filters.get("state"),
        after,
        limit,
    )


# --- writes (session) ------------------------------------------------------------------


async def lock_report(session: AsyncSession, report_id: int) -> SimpleNamespace | None:
    """The revision, locked for the transaction (its columns as attributes)."""
    result = await session.exec(
        text(f"SELECT {REPORT_COLUMNS} FROM statistical_report WHERE id = :id FOR UPDATE"),  # noqa: S608
        params={"id": report_id},
    )
    row = result.mappings().first()
    return SimpleNamespace(**row) if row else None


async def lock_bureau_period(session: AsyncSession, bureau_id: int, period: str) -> None:
    """Serialise the writers of one bureau's report for one period (drafts, corrections)."""
    await session.exec(
        text("SELECT pg_advisory_xact_lock(hashtext('statistical_report'), hashtext(:key))"),
        params={"key": f"{bureau_id}:{period}"},
    )


async def revisions(session: AsyncSession, bureau_id: int, period: str) -> list[dict[str, Any]]:
    result = await session.exec(
        text(
            "SELECT id, revision, state FROM statistical_report WHERE bureau_id = :b AND period = :p "
            "ORDER BY revision"
        ),
        params={"b": bureau_id, "p": period},
    )
    return [dict(r) for r in result.mappings()]


async def bureau_name(session: AsyncSession, bureau_id: int) -> str | None:
    result = await session.exec(
        text("SELECT name FROM bureau_dimension WHERE bureau_id = :b"), params={"b": bureau_id}
    )
    return result.scalar_one_or_none()


async def insert_report(session: AsyncSession, values: dict[str, Any]) -> int:
    columns = ", ".join(values)
    binds = ", ".join(f":{k}" for k in values)
    result = await session.exec(
        text(f"INSERT INTO statistical_report ({columns}) VALUES ({binds}) RETURNING id"),  # noqa: S608
        params=values,
    )
    return result.scalar_one()


async def copy_figures(session: AsyncSession, report_id: int, bureau_id: int, period: str) -> None:
    """The draft's figures: the bureau's aggregates for the period, copied in SQL."""
    await session.exec(
        text(
            "INSERT INTO report_figure (report_id, measure, dimension, value, amount) "
            "SELECT :r, measure, dimension, value, amount FROM aggregate WHERE bureau_id = :b AND period = :p"
        ),
        params={"r": report_id, "b": bureau_id, "p": period},
    )


async def mark_submitted(
    session: AsyncSession, report_id: int, at: datetime, on, by: str, document: bytes, etag: str
) -> None:
    await session.exec(
        text(
            "UPDATE statistical_report SET state = 'submitted', submitted_at = :at, submitted_on = :on, "
            "submitted_by = :by, document = :document, etag = :etag WHERE id = :id AND state = 'draft'"
        ),
        params={"id": report_id, "at": at, "on": on, "by": by, "document": document, "etag": etag},
    )


async def late_reports(session: AsyncSession, periods: list[str], dues: list) -> list[dict[str, Any]]:
    """Every bureau expected to report (in the bureau dimension, below the national regulator)
    with a period in ``periods`` whose report was not submitted by its due day, and no alert yet."""
    result = await session.exec(
        text(
            """
            SELECT d.bureau_id, d.bureau_path, d.name, p.period, p.due,
                   (SELECT min(r.submitted_on) FROM statistical_report r
                     WHERE r.bureau_id = d.bureau_id AND r.period = p.period
                       AND r.state = 'submitted') AS submitted_on
              FROM bureau_dimension d
             CROSS JOIN unnest(CAST(:periods AS text[]), CAST(:dues AS date[])) AS p(period, due)
             WHERE d.parent_id IS NOT NULL
               AND NOT EXISTS (
                   SELECT 1 FROM alert a
                    WHERE a.key = 'report-late:' || d.bureau_id || ':' || p.period)
               AND NOT EXISTS (
                   SELECT 1 FROM statistical_report r
                    WHERE r.bureau_id = d.bureau_id AND r.period = p.period AND r.state = 'submitted'
                      AND r.submitted_on <= p.due)
             ORDER BY d.bureau_id, p.period
            """
        ),
        params={"periods": periods, "dues": dues},
    )
    return [dict(r) for r in result.mappings()]
