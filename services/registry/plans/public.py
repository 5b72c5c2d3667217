"""The published results of "double random, one public" inspections (一公开).

Only the results of done tasks are published: the plan, the bureau, the
subject, the day and the result, and the latest day of publication (the
inspection day plus 20 working days of the national holiday calendar). No
officer is named, and the findings (free text, which may name people) stay
internal. Functions here never commit.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import select as core_select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.dates import CalendarNotCovered, add_working_days
from services.common.pagination import decode_cursor, make_page
from services.registry.inspections.models import Inspection
from services.registry.network.models import Bureau
from services.registry.plans.models import InspectionPlan, InspectionTask, TaskState
from services.registry.plans.task_schemas import PublicResultRead
from services.registry.plans.tasks import subject_name

_task = InspectionTask.__table__  # type: ignore[attr-defined]
_plan = InspectionPlan.__table__  # type: ignore[attr-defined]
_bureau = Bureau.__table__  # type: ignore[attr-defined]
_inspection = Inspection.__table__  # type: ignore[attr-defined]

CSV_BATCH = 1000
CSV_COLUMNS = list(PublicResultRead.model_fields)

# Named column by column: nothing of the inspection's officers or findings can slip in.
_PUBLIC_READ = (
    core_select(
        _task.c.id.label("task_id"),
        _task.c.plan_id,
        _plan.c.title.label("plan_title"),
        _plan.c.year,
        _plan.c.bureau_id,
        _bureau.c.name.label("bureau_name"),
        _task.c.subject_type,
        _task.c.subject_id,
        subject_name(_task.c.subject_type, _task.c.subject_id).label("subject_name"),
        _inspection.c.inspected_on,
        _inspection.c.result,
    )
    .select_from(
        _task.join(_plan, _plan.c.id == _task.c.plan_id)
        .join(_bureau, _bureau.c.id == _plan.c.bureau_id)
        .join(_inspection, _inspection.c.id == _task.c.inspection_id)
    )
    .where(_task.c.state == TaskState.DONE.value)
    .order_by(_task.c.id)
)


@lru_cache(maxsize=4096)
def publication_due(inspected_on: date, working_days: int) -> date | None:
    """``working_days`` working days after ``inspected_on``; None beyond the years the holiday
    calendar covers (a public read shows no date rather than failing)."""
    try:
        return add_working_days(inspected_on, working_days)
    except CalendarNotCovered:
        return None


def _filtered(query, filters: dict[str, Any]):
    columns = {"plan_id": _task.c.plan_id, "bureau_id": _plan.c.bureau_id, "year": _plan.c.year}
    for name, value in filters.items():
        if value is not None:
            query = query.where(columns[name] == value)
    return query


def _read(row: Any, working_days: int) -> PublicResultRead:
    return PublicResultRead.model_validate(
        {**row, "publication_due_on": publication_due(row["inspected_on"], working_days)}
    )


async def _rows(
    session: AsyncSession, filters: dict[str, Any], after_id: int | None, limit: int
) -> list[Any]:
    query = _filtered(_PUBLIC_READ, filters).limit(limit)
    if after_id is not None:
        query = query.where(_task.c.id > after_id)
    return list((await session.exec(query)).mappings().all())


async def list_results(
    session: AsyncSession, filters: dict[str, Any], cursor: str | None, limit: int, working_days: int
) -> tuple[list[PublicResultRead], str | None]:
    after = decode_cursor(cursor, int)
    rows = await _rows(session, filters, after[0] if after else None, limit + 1)
    page, next_cursor = make_page(rows, limit, lambda r: [r["task_id"]])
    return [_read(r, working_days) for r in page], next_cursor


async def results_csv(session: AsyncSession, filters: dict[str, Any], working_days: int) -> bytes:
    """Every published result the filters select, as CSV (UTF-8 with a BOM, which spreadsheet
    programs need to read Chinese text), read in keyset batches."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    after: int | None = None
    while True:
        rows = await _rows(session, filters, after, CSV_BATCH)
        writer.writerows(_csv_rows(_read(r, working_days) for r in rows))
        if len(rows) < CSV_BATCH:
            break
        after = rows[-1]["task_id"]
    return out.getvalue().encode()


# A cell a spreadsheet would read as a formula (CSV injection) is kept as text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_rows(results: Iterable[PublicResultRead]) -> Iterable[dict[str, Any]]:
    for result in results:
        yield {k: _cell(v) for k, v in result.model_dump(mode="json").items()}
