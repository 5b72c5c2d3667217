"""Supervision coverage (监管覆盖面): the share of a bureau subtree's certification bodies,
auditors, certified enterprises and certificates inspected at least once in a period.

The notice brings every one of them under supervision; this counts, per kind, how many the
subtree keeps (by the record's own bureau) and how many of those at least one inspection
(监督检查) — by any bureau — targeted between ``from`` and ``to`` inclusive. One statement,
counted by PostgreSQL; nothing is summed in Python. The totals are the records kept now.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.problems import NotFound, UnprocessableEntity
from services.registry.inspections.schemas import CoverageKind, SupervisionCoverage
from services.registry.network import repository as network_repo

# Kind → (table, inspection target type). The tables are fixed names, never user input.
KINDS: dict[str, tuple[str, str]] = {
    "body": ("certification_body", "body"),
    "auditor": ("auditor", "auditor"),
    "enterprise": ("enterprise", "enterprise"),
    "certificate": ("certificate", "certificate"),
}


def _kind_select(kind: str, table: str, target: str) -> str:
    return f"""
SELECT '{kind}' AS kind,
       count(*) AS total,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM inspection i
           WHERE i.target_type = '{target}' AND i.target_id = s.id
             AND i.inspected_on BETWEEN :date_from AND :date_to)) AS inspected
FROM {table} s
WHERE starts_with(s.bureau_path, :bureau_path)"""  # noqa: S608 - fixed names of KINDS; values are bound


_COVERAGE = text("\nUNION ALL".join(_kind_select(k, t, g) for k, (t, g) in KINDS.items()))


async def supervision_coverage(
    session: AsyncSession, principal: Principal, bureau_id: int | None, date_from: date, date_to: date
) -> SupervisionCoverage:
    if date_to < date_from:
        message = f"The period ends ({date_to}) before it starts ({date_from})."
        raise UnprocessableEntity(
            message, errors=[{"loc": "query.to", "message": message, "type": "period_reversed"}]
        )
    bureau = await network_repo.get_bureau(session, bureau_id or principal.bureau_id)
    if bureau is None or not principal.in_scope(bureau.path):
        raise NotFound(f"Bureau {bureau_id} not found.")
    rows = (
        await session.exec(
            _COVERAGE,  # type: ignore[call-overload]
            params={"bureau_path": bureau.path, "date_from": date_from, "date_to": date_to},
        )
    ).mappings()
    kinds = [
        CoverageKind(
            kind=r["kind"],
            total=r["total"],
            inspected=r["inspected"],
            share=round(r["inspected"] / r["total"], 6) if r["total"] else None,
        )
        for r in rows
    ]
    return SupervisionCoverage(
        bureau_id=bureau.id,  # type: ignore[arg-type]
        bureau_path=bureau.path,
        date_from=date_from,
        date_to=date_to,
        kinds=kinds,
    )
