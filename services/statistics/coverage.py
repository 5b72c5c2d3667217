"""Supervision coverage (监管覆盖面) in the aggregates: per bureau subtree and period, how many
certification bodies, auditors, certified enterprises and certificates the subtree keeps and how
many of them were inspected at least once in the period.

The registry counts them (``GET /api/v1/registry/supervision-coverage``, one SQL statement);
``snapshot_coverage`` (an arq job, on cron) asks it for every bureau the statistics know — the
bureau dimension and the bureaus holding aggregates — for the current and previous month,
quarter and year, and upserts the figures as aggregate rows of dimension ``all``:
``coverage_<kind>_total`` and ``coverage_<kind>_inspected``. Running it twice writes the same
rows (an upsert on the aggregate's key), so overlapping or repeated runs are harmless; each
run refreshes the figures, which move as inspections are recorded late.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.client import ServiceClient
from services.common.dates import today
from services.common.db import utcnow
from services.common.problems import NotFound
from services.statistics.aggregates.models import Aggregate

log = logging.getLogger(__name__)

KINDS = ("body", "auditor", "enterprise", "certificate")
COVERAGE_PATH = "/api/v1/registry/supervision-coverage"


def coverage_measures() -> list[str]:
    return [f"coverage_{kind}_{figure}" for kind in KINDS for figure in ("total", "inspected")]


# --- periods ----------------------------------------------------------------------------


def _month_end(year: int, month: int) -> date:
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


def month(on: date) -> tuple[str, str, date, date]:
    return "month", f"{on.year}-{on.month:02d}", date(on.year, on.month, 1), _month_end(on.year, on.month)


def quarter(on: date) -> tuple[str, str, date, date]:
    q = (on.month - 1) // 3 + 1
    first = 3 * q - 2
    return "quarter", f"{on.year}-Q{q}", date(on.year, first, 1), _month_end(on.year, first + 2)


def year(on: date) -> tuple[str, str, date, date]:
    return "year", f"{on.year}", date(on.year, 1, 1), date(on.year, 12, 31)


def periods(on: date) -> list[tuple[str, str, date, date]]:
    """(kind, key, first day, last day) of the current and previous month, quarter and year."""
    this_month, this_quarter = month(on), quarter(on)
    return [
        this_month,
        month(this_month[2] - timedelta(days=1)),
        this_quarter,
        quarter(this_quarter[2] - timedelta(days=1)),
        year(on),
        year(date(on.year - 1, 1, 1)),
    ]


# --- the bureaus ------------------------------------------------------------------------

_KNOWN_BUREAUS = text(
    "SELECT bureau_id FROM bureau_dimension UNION SELECT DISTINCT bureau_id FROM aggregate ORDER BY 1"
)


async def known_bureaus(session: AsyncSession) -> list[int]:
    """The bureaus the statistics know: the bureau dimension and those holding aggregates."""
    return [r[0] for r in (await session.exec(_KNOWN_BUREAUS)).all()]  # type: ignore[call-overload]


# --- the snapshot -----------------------------------------------------------------------


def _rows(coverage: dict[str, Any], kind_key: str, period_kind: str) -> list[dict[str, Any]]:
    rows = []
    for item in coverage["kinds"]:
        for figure in ("total", "inspected"):
            rows.append(
                {
                    "bureau_id": coverage["bureau_id"],
                    "period": kind_key,
                    "dimension": "all",
                    "value": "",
                    "measure": f"coverage_{item['kind']}_{figure}",
                    "bureau_path": coverage["bureau_path"],
                    "period_kind": period_kind,
                    "amount": Decimal(item[figure]),
                    "updated_at": utcnow(),
                }
            )
    return rows


async def upsert(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = Aggregate.__table__  # type: ignore[attr-defined]
    statement = insert(table).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["bureau_id", "period", "dimension", "value", "measure"],
        set_={
            "amount": statement.excluded.amount,
            "bureau_path": statement.excluded.bureau_path,
            "period_kind": statement.excluded.period_kind,
            "updated_at": statement.excluded.updated_at,
        },
    )
    await session.exec(statement)  # type: ignore[call-overload]


async def snapshot(
    sessionmaker, services: ServiceClient, *, on: date, bureau_ids: Iterable[int] | None = None
) -> dict[str, int]:
    """Ask the registry for each bureau and period, upsert the figures; one transaction per
    bureau. Returns the bureaus written, skipped (unknown to the registry) and rows written."""
    if bureau_ids is None:
        async with sessionmaker() as session:
            bureau_ids = await known_bureaus(session)
    written = skipped = rows_written = 0
    for bureau_id in bureau_ids:
        rows: list[dict[str, Any]] = []
        try:
            for period_kind, key, first, last in periods(on):
                coverage = await services.get(
                    COVERAGE_PATH,
                    params={"bureau_id": bureau_id, "from": first.isoformat(), "to": last.isoformat()},
                )
                rows += _rows(coverage, key, period_kind)
        except NotFound:
            skipped += 1
            log.warning(
                "supervision coverage: bureau unknown to the registry", extra={"bureau_id": bureau_id}
            )
            continue
        async with sessionmaker() as session:
            await upsert(session, rows)
            await session.commit()
        written += 1
        rows_written += len(rows)
    return {"bureaus": written, "skipped": skipped, "rows": rows_written}


async def snapshot_coverage(
    ctx: dict[str, Any], on: str | None = None, bureau_ids: list[int] | None = None
) -> dict[str, int]:
    """arq job: the supervision coverage aggregates of the current and previous periods."""
    day = date.fromisoformat(on) if on else today()
    return await snapshot(ctx["sessionmaker"], ctx["services"], on=day, bureau_ids=bureau_ids)
