"""The changes-since feed's one query.

Every aggregate figure written (and every one deleted, from its tombstone) and every report
revision submitted carries ``changed_txid``, the id of the transaction that wrote it. Rows are
served in (txid, kind, key) order, and only those whose txid is below the horizon of the
query's own snapshot — older than every transaction of this database still running — so a
transaction that
commits after a younger one cannot have its rows slip behind a cursor already handed out: until
it ends, nothing at or after its txid is served. Rows of one transaction are all visible at once
(it has committed), and the key orders them within it, so a cursor never splits them wrongly.
"""

from __future__ import annotations

import asyncpg

KINDS = ("aggregate", "aggregate_removal", "report")

# The horizon: the oldest transaction running when the statement's snapshot was taken, leaving
# out those known to run in another database of the server (transaction ids are server-wide, but
# a transaction of another database never writes these tables; a backend never changes
# database, so excluding them is safe even from a slightly older view of pg_stat_activity).
# Without running transactions of its own database, the snapshot's xmax: every transaction
# below it has ended. Backends whose ids the role may not see are kept (conservative).
FEED = """
WITH snap AS (SELECT pg_current_snapshot() AS s),
elsewhere AS (
    SELECT backend_xid::text::bigint AS xid FROM pg_stat_activity
     WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()),
horizon AS (
    SELECT coalesce(
        (SELECT min(x::text::bigint) FROM snap, pg_snapshot_xip(snap.s) AS x
          WHERE x::text::bigint % 4294967296 NOT IN (SELECT xid FROM elsewhere)),
        (SELECT pg_snapshot_xmax(s)::text::bigint FROM snap)) AS xmin)
SELECT * FROM (
    (SELECT a.changed_txid AS txid, 0 AS kind, a.bureau_id AS k0, a.period AS k1,
            a.dimension AS k2, a.value AS k3, a.measure AS k4, a.bureau_id,
            a.bureau_path, a.period, a.period_kind, a.dimension, a.value, a.measure, a.amount,
            NULL::bigint AS report_id,
            NULL::int AS revision, NULL::bigint AS supersedes_id, a.updated_at AS at
       FROM aggregate a, horizon h
      WHERE a.changed_txid < h.xmin AND a.changed_txid >= $1
        AND (a.changed_txid, 0, a.bureau_id, a.period, a.dimension, a.value, a.measure)
            > ($1, $2, $3, $4, $5, $6, $7)
        AND a.bureau_path LIKE $8 ESCAPE '/'
      ORDER BY a.changed_txid, a.bureau_id, a.period, a.dimension, a.value, a.measure
      LIMIT $9)
    UNION ALL
    (SELECT r.changed_txid, 1, r.bureau_id, r.period, r.dimension, r.value, r.measure,
            r.bureau_id, r.bureau_path, r.period, r.period_kind, r.dimension, r.value, r.measure,
            NULL, NULL, NULL, NULL, r.removed_at
       FROM aggregate_removal r, horizon h
      WHERE r.changed_txid < h.xmin AND r.changed_txid >= $1
        AND (r.changed_txid, 1, r.bureau_id, r.period, r.dimension, r.value, r.measure)
            > ($1, $2, $3, $4, $5, $6, $7)
        AND r.bureau_path LIKE $8 ESCAPE '/'
      ORDER BY r.changed_txid, r.bureau_id, r.period, r.dimension, r.value, r.measure
      LIMIT $9)
    UNION ALL
    (SELECT s.changed_txid, 2, s.id, '', '', '', '',
            s.bureau_id, s.bureau_path, s.period, s.period_kind, NULL, NULL, NULL,
            NULL, s.id, s.revision, s.supersedes_id, s.submitted_at
       FROM statistical_report s, horizon h
      WHERE s.changed_txid < h.xmin AND s.changed_txid >= $1 AND s.state = 'submitted'
        AND (s.changed_txid, 2, s.id) > ($1, $2, $3)
        AND s.bureau_path LIKE $8 ESCAPE '/'
      ORDER BY s.changed_txid, s.id
      LIMIT $9)
) AS changes
ORDER BY txid, kind, k0, k1, k2, k3, k4
LIMIT $9
"""


async def changes(
    conn: asyncpg.Connection, after: tuple, prefix_pattern: str, limit: int
) -> list[asyncpg.Record]:
    """``after``: (txid, kind, k0, k1, k2, k3, k4) of the last change served."""
    return await conn.fetch(FEED, *after, prefix_pattern, limit)
