"""Every SQL statement of bulk sync.

The write path runs on the raw asyncpg connection of one pooled connection held
for the whole upload: new rows go in with binary ``COPY`` (their ids drawn from
the table's identity sequence first, so links and history can be copied in the
same batch), changed rows through a temporary staging table and one
``UPDATE … FROM`` that skips rows already as sent. References are resolved with
one query per batch. The reads of the API use the request's session.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registry.imports.models import ImportBatch, ImportRowError

# --- work tables of one upload (temporary, on the upload's own connection) -------------

# Kept with the pooled connection (created once per connection, emptied per upload): dropping
# them would leave asyncpg's cached statements pointing at tables that no longer exist.
_WORK_TABLES = (
    # Byte order: the key is compared, never sorted for people (a third cheaper than a locale's order).
    'CREATE TEMP TABLE IF NOT EXISTS import_seen_key (k text COLLATE "C" PRIMARY KEY)',
    """CREATE TEMP TABLE IF NOT EXISTS import_stage_enterprise (
        id bigint PRIMARY KEY, credit_code varchar(18), org_code varchar(9), name varchar(128),
        division_code varchar(6), address varchar(256)) ON COMMIT DELETE ROWS""",
    """CREATE TEMP TABLE IF NOT EXISTS import_stage_product (
        id bigint PRIMARY KEY, name varchar(128), category_code varchar(8), trademark varchar(64))
        ON COMMIT DELETE ROWS""",
    """CREATE TEMP TABLE IF NOT EXISTS import_stage_certificate (
        id bigint PRIMARY KEY, body_id bigint, holder_id bigint, holder_name varchar(128),
        division_code varchar(6), scope varchar(2000), issued_on date, expires_on date,
        products_given boolean) ON COMMIT DELETE ROWS""",
    """CREATE TEMP TABLE IF NOT EXISTS import_stage_link (
        certificate_id bigint, product_id bigint, PRIMARY KEY (certificate_id, product_id))
        ON COMMIT DELETE ROWS""",
)


async def open_work_tables(conn: asyncpg.Connection) -> None:
    for statement in _WORK_TABLES:
        await conn.execute(statement)
    await conn.execute("TRUNCATE import_seen_key")


async def close_work_tables(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE import_seen_key")


# For the rest of a batch's transaction, look rows up through their keys' indexes. Every lookup
# and update of a batch is by key, a few thousand keys in a large table; the planner's statistics
# lag behind a table an import is filling (an empty table that now holds a million rows still
# looks empty), and it would scan the whole table once per batch.
PLAN_BY_KEYS = (
    "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true), "
    "set_config('enable_mergejoin', 'off', true)"
)


async def claim_keys(conn: asyncpg.Connection, keys: list[str]) -> set[str]:
    """The keys not seen before in this upload (now marked seen)."""
    rows = await conn.fetch(
        "INSERT INTO import_seen_key (k) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING k", keys
    )
    return {r[0] for r in rows}


# --- the import batch row -------------------------------------------------------------

_BATCH_COLUMNS = (
    "id, kind, format, status, rows_total, rows_written, rows_failed, rows_inserted, rows_updated, "
    "rows_unchanged, digest, bureau_id, bureau_path, account, started_at, finished_at"
)


async def create_batch(
    conn: asyncpg.Connection,
    *,
    kind: str,
    fmt: str,
    bureau_id: int,
    bureau_path: str,
    account: str,
    now: datetime,
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO import_batch (kind, format, status, rows_total, rows_written, rows_failed,
                rows_inserted, rows_updated, rows_unchanged, bureau_id, bureau_path, account, started_at)
            VALUES ($1, $2, 'running', 0, 0, 0, 0, 0, 0, $3, $4, $5, $6) RETURNING {_BATCH_COLUMNS}""",  # noqa: S608 - constant column list
        kind,
        fmt,
        bureau_id,
        bureau_path,
        account,
        now,
    )


async def add_counts(
    conn: asyncpg.Connection,
    import_id: int,
    *,
    total: int,
    failed: int,
    inserted: int,
    updated: int,
    unchanged: int,
) -> None:
    await conn.execute(
        """UPDATE import_batch SET rows_total = rows_total + $2, rows_failed = rows_failed + $3,
               rows_written = rows_written + $4 + $5 + $6, rows_inserted = rows_inserted + $4,
               rows_updated = rows_updated + $5, rows_unchanged = rows_unchanged + $6
           WHERE id = $1""",
        import_id,
        total,
        failed,
        inserted,
        updated,
        unchanged,
    )


async def finish_batch(
    conn: asyncpg.Connection, import_id: int, *, status: str, digest: str | None, now: datetime
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"UPDATE import_batch SET status = $2, digest = $3, finished_at = $4 WHERE id = $1 "  # noqa: S608
        f"RETURNING {_BATCH_COLUMNS}",
        import_id,
        status,
        digest,
        now,
    )


async def insert_row_errors(
    conn: asyncpg.Connection, import_id: int, rows: Iterable[tuple[int, str]]
) -> None:
    """``rows``: (row number, errors as JSON text)."""
    await conn.copy_records_to_table(
        "import_row_error",
        columns=("import_id", "row_number", "errors"),
        records=[(import_id, number, errors) for number, errors in rows],
    )


# --- references, one query per batch ------------------------------------------------------


async def known_divisions(conn: asyncpg.Connection, codes: Sequence[str]) -> set[str]:
    rows = await conn.fetch("SELECT code FROM division WHERE code = ANY($1::text[])", codes)
    return {r[0] for r in rows}


async def bodies_by_approval_number(
    conn: asyncpg.Connection, numbers: Sequence[str]
) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT id, approval_number, ccc_body_code FROM certification_body "
        "WHERE approval_number = ANY($1::text[])",
        numbers,
    )
    return {r["approval_number"]: r for r in rows}


async def enterprises_by_codes(
    conn: asyncpg.Connection, credit_codes: Sequence[str], org_codes: Sequence[str]
) -> list[asyncpg.Record]:
    """Enterprises under any of the credit codes, or whose organisation code (kept, or inside
    the credit code) is one of ``org_codes``; a merged record answers with the one it went into."""
    return await conn.fetch(
        """SELECT e.id, e.credit_code, e.org_code,
                  COALESCE(t.id, e.id) AS target_id,
                  COALESCE(t.name, e.name) AS name,
                  COALESCE(t.division_code, e.division_code) AS division_code,
                  COALESCE(t.bureau_path, e.bureau_path) AS bureau_path,
                  CASE WHEN t.id IS NULL THEN e.import_id ELSE t.import_id END AS import_id,
                  e.status = 'merged' AS merged
           FROM enterprise e LEFT JOIN enterprise t ON e.status = 'merged' AND t.id = e.merged_into_id
           WHERE e.credit_code = ANY($1::text[]) OR e.org_code = ANY($2::text[])
              OR substr(e.credit_code, 9, 9) = ANY($2::text[])
           ORDER BY e.id""",
        credit_codes,
        org_codes,
    )


async def products_by_holder_model(
    conn: asyncpg.Connection, holder_ids: Sequence[int], models: Sequence[str]
) -> dict[tuple[int, str], asyncpg.Record]:
    """The product of each (holder, model) pair; the oldest where one was entered twice."""
    # ``= ANY`` on each column keeps to the indexes whatever the table's statistics say (a join
    # on unnest() can turn into a scan of the whole table, once per batch).
    rows = await conn.fetch(
        """SELECT id, holder_id, model, bureau_path, import_id FROM product
           WHERE holder_id = ANY($1::bigint[]) AND model = ANY($2::text[]) ORDER BY id""",
        sorted(set(holder_ids)),
        sorted(set(models)),
    )
    wanted = set(zip(holder_ids, models, strict=True))
    found: dict[tuple[int, str], asyncpg.Record] = {}
    for r in rows:
        key = (r["holder_id"], r["model"])
        if key in wanted:
            found.setdefault(key, r)
    return found


async def certificates_by_number(
    conn: asyncpg.Connection, schemes: Sequence[str], numbers: Sequence[str]
) -> dict[tuple[str, str], asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT id, scheme, number, bureau_path, import_id FROM certificate WHERE number = ANY($1::text[])",
        sorted(set(numbers)),
    )
    wanted = set(zip(schemes, numbers, strict=True))
    return {(r["scheme"], r["number"]): r for r in rows if (r["scheme"], r["number"]) in wanted}


# --- writes -------------------------------------------------------------------------------


async def id_sequence(conn: asyncpg.Connection, table: str) -> str:
    """The identity sequence of ``table`` (looked up once: per row it costs six times the draw)."""
    return await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table)


async def next_ids(conn: asyncpg.Connection, sequence: str, count: int) -> list[int]:
    """``count`` ids drawn from an identity sequence, for rows copied in with their id."""
    rows = await conn.fetch("SELECT nextval($1::regclass) FROM generate_series(1, $2)", sequence, count)
    return [r[0] for r in rows]


async def copy_in(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], records: Iterable[tuple]
) -> None:
    """Binary COPY of ``records`` (a list, or a generator consumed as COPY sends)."""
    if isinstance(records, list) and not records:
        return
    await conn.copy_records_to_table(table, columns=list(columns), records=records)


ENTERPRISE_COLUMNS = (
    "id", "credit_code", "org_code", "name", "division_code", "address", "status",
    "bureau_id", "bureau_path", "import_id", "version", "created_at", "updated_at",
)  # fmt: skip
PRODUCT_COLUMNS = (
    "id", "holder_id", "name", "category_code", "model", "trademark",
    "bureau_id", "bureau_path", "import_id", "version", "created_at", "updated_at",
)  # fmt: skip
CERTIFICATE_COLUMNS = (
    "id", "number", "scheme", "body_id", "holder_id", "holder_name", "division_code", "scope",
    "issued_on", "expires_on", "status", "status_changed_at", "bureau_id", "bureau_path",
    "import_id", "version", "created_at", "updated_at",
)  # fmt: skip
STATUS_CHANGE_COLUMNS = (
    "certificate_id", "from_status", "to_status", "reason", "actor_kind", "actor_id",
    "actor_bureau_id", "request_id", "changed_at",
)  # fmt: skip
LINK_COLUMNS = ("certificate_id", "product_id")
STAGED_CERTIFICATE_COLUMNS = (
    "id", "body_id", "holder_id", "holder_name", "division_code", "scope",
    "issued_on", "expires_on", "products_given",
)  # fmt: skip


async def update_enterprises(
    conn: asyncpg.Connection, records: list[tuple], *, scope: str, import_id: int, now: datetime
) -> set[int]:
    """Apply staged rows to their enterprises; the ids of those that changed (version bumped).

    A code is added to a record that lacks it (an older record gets its credit code), never
    replaced: the record keeps the identity it was registered under."""
    await conn.execute("DELETE FROM import_stage_enterprise")  # a savepoint's rows, retried one by one
    await conn.copy_records_to_table(
        "import_stage_enterprise",
        columns=["id", "credit_code", "org_code", "name", "division_code", "address"],
        records=records,
    )
    rows = await conn.fetch(
        """UPDATE enterprise e SET name = s.name, division_code = s.division_code, address = s.address,
                  credit_code = COALESCE(e.credit_code, s.credit_code),
                  org_code = COALESCE(e.org_code, s.org_code),
                  version = e.version + 1, updated_at = $3, import_id = $2
           FROM import_stage_enterprise s
           WHERE e.id = s.id AND e.bureau_path LIKE $1 || '%'
             AND (e.name, e.division_code, e.address, e.credit_code, e.org_code) IS DISTINCT FROM
                 (s.name, s.division_code, s.address, COALESCE(e.credit_code, s.credit_code),
                  COALESCE(e.org_code, s.org_code))
           RETURNING e.id""",
        scope,
        import_id,
        now,
    )
    return {r[0] for r in rows}


async def update_products(
    conn: asyncpg.Connection, records: list[tuple], *, scope: str, import_id: int, now: datetime
) -> set[int]:
    await conn.execute("DELETE FROM import_stage_product")
    await conn.copy_records_to_table(
        "import_stage_product", columns=["id", "name", "category_code", "trademark"], records=records
    )
    rows = await conn.fetch(
        """UPDATE product p SET name = s.name, category_code = s.category_code, trademark = s.trademark,
                  version = p.version + 1, updated_at = $3, import_id = $2
           FROM import_stage_product s
           WHERE p.id = s.id AND p.bureau_path LIKE $1 || '%'
             AND (p.name, p.category_code, p.trademark)
                 IS DISTINCT FROM (s.name, s.category_code, s.trademark)
           RETURNING p.id""",
        scope,
        import_id,
        now,
    )
    return {r[0] for r in rows}


async def update_certificates(
    conn: asyncpg.Connection,
    records: list[tuple],
    links: list[tuple[int, int]],
    *,
    scope: str,
    import_id: int,
    now: datetime,
) -> set[int]:
    """Apply staged rows to their certificates, and make the covered products of those that
    name theirs exactly the ones named; the ids of the certificates that changed."""
    await conn.execute("DELETE FROM import_stage_certificate")
    await conn.execute("DELETE FROM import_stage_link")
    await conn.copy_records_to_table(
        "import_stage_certificate",
        columns=list(STAGED_CERTIFICATE_COLUMNS),
        records=records,
    )
    # The holder's name and division as printed stay those of the issue, unless the holder changed.
    updated = await conn.fetch(
        """UPDATE certificate c SET body_id = s.body_id, holder_id = s.holder_id,
                  holder_name = CASE WHEN c.holder_id = s.holder_id THEN c.holder_name ELSE s.holder_name END,
                  division_code = CASE WHEN c.holder_id = s.holder_id THEN c.division_code
                                       ELSE s.division_code END,
                  scope = s.scope, issued_on = s.issued_on, expires_on = s.expires_on,
                  version = c.version + 1, updated_at = $3, import_id = $2
           FROM import_stage_certificate s
           WHERE c.id = s.id AND c.bureau_path LIKE $1 || '%'
             AND (c.body_id, c.holder_id, c.scope, c.issued_on, c.expires_on) IS DISTINCT FROM
                 (s.body_id, s.holder_id, s.scope, s.issued_on, s.expires_on)
           RETURNING c.id""",
        scope,
        import_id,
        now,
    )
    changed = {r[0] for r in updated}
    if links:
        await conn.copy_records_to_table("import_stage_link", columns=list(LINK_COLUMNS), records=links)
    relinked = await conn.fetch(
        """WITH removed AS (
               DELETE FROM certificate_product cp USING import_stage_certificate s
               WHERE cp.certificate_id = s.id AND s.products_given
                 AND NOT EXISTS (SELECT 1 FROM import_stage_link l
                                 WHERE l.certificate_id = cp.certificate_id AND l.product_id = cp.product_id)
               RETURNING cp.certificate_id),
           added AS (
               INSERT INTO certificate_product (certificate_id, product_id)
               SELECT certificate_id, product_id FROM import_stage_link
               ON CONFLICT DO NOTHING RETURNING certificate_id)
           SELECT certificate_id FROM removed UNION SELECT certificate_id FROM added"""
    )
    only_relinked = [r[0] for r in relinked if r[0] not in changed]
    if only_relinked:
        await conn.execute(
            "UPDATE certificate SET version = version + 1, updated_at = $2, import_id = $3 "
            "WHERE id = ANY($1)",
            only_relinked,
            now,
            import_id,
        )
    return changed | set(only_relinked)


# --- reads of the API -------------------------------------------------------------------


async def get_batch(session: AsyncSession, import_id: int) -> ImportBatch | None:
    return await session.get(ImportBatch, import_id)


async def list_batches(
    session: AsyncSession, *, within_path: str, filters: dict[str, Any], before_id: int | None, limit: int
) -> list[ImportBatch]:
    query = (
        select(ImportBatch)
        .where(ImportBatch.bureau_path.startswith(within_path, autoescape=True))  # type: ignore[union-attr]
        .order_by(ImportBatch.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(ImportBatch, name) == value)
    if before_id is not None:
        query = query.where(ImportBatch.id < before_id)  # type: ignore[operator]
    return list((await session.exec(query)).scalars().all())


async def list_row_errors(
    session: AsyncSession, import_id: int, *, after_row: int | None, limit: int
) -> list[ImportRowError]:
    query = (
        select(ImportRowError)
        .where(ImportRowError.import_id == import_id)
        .order_by(ImportRowError.row_number)
        .limit(limit)
    )
    if after_row is not None:
        query = query.where(ImportRowError.row_number > after_row)
    return list((await session.exec(query)).scalars().all())
