"""Reconciliation (对账) of the case facts with enforcement, over HTTP.

Enforcement's ``GET /api/v1/enforcement/case-facts`` answers every case with its version and the
very payload its ``enforcement.case.changed`` event carries. A fact that is missing, older, or
differs at the same version is applied again through :func:`facts.service.apply_case` (the
aggregates move by the same deltas as for an event); a fact whose case enforcement no longer has
is dropped with its contributions; when anything was repaired, the figures are then
recomputed from the facts (a fact changed by hand leaves figures no delta knows of). Each page
is one transaction, each case under the inbox's
lock of that case, so an event applied meanwhile is neither lost nor overwritten by an older
state. The run row says what was repaired.
"""

# ruff: noqa: S608 - statements composed of this module's constant fragments; every value is bound

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.client import ServiceClient
from services.common.dates import today
from services.common.db import utcnow
from services.common.event_schemas import CaseChanged
from services.statistics.aggregates.sql import rebuild
from services.statistics.facts import bureaus, service
from services.statistics.facts.models import ReconciliationRun

log = logging.getLogger("statistics.reconciliation")

PAGE_SIZE = 200
KEPT_IDS = 1000  # ids listed per kind of repair in a run row
FEED = "/api/v1/enforcement/case-facts"

# The fields of a fact the payload sets (filing_due / filed_on are the legal-affairs domain's).
COMPARED = (
    "number",
    "lead_id",
    "procedure",
    "state",
    "subject_type",
    "subject_id",
    "party_kind",
    "violation_code",
    "opened_on",
    "decided_on",
    "closed_on",
    "decision_kind",
    "penalty_kinds",
    "fine_decided",
    "fine_current",
    "confiscation",
    "paid_total",
    "transferred_to_judicial_organ",
    "needs_legal_review",
    "needs_filing",
    "next_due",
    "next_due_rule",
    "officer_count",
)
_FACTS = text(
    f"SELECT case_id, version, bureau_id, bureau_path, {', '.join(COMPARED)} FROM case_fact "
    "WHERE case_id = ANY(CAST(:ids AS bigint[]))"
)
_VANISHED_BETWEEN = text(
    "SELECT case_id FROM case_fact WHERE case_id > :after AND case_id <= :upto "
    "AND NOT (case_id = ANY(CAST(:ids AS bigint[]))) ORDER BY case_id"
)
_VANISHED_AFTER = text("SELECT case_id FROM case_fact WHERE case_id > :after ORDER BY case_id")
_CASE_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


def _differs(row: Any, item: dict[str, Any]) -> str | None:
    """Why the fact is not what enforcement says, or None."""
    if row is None:
        return "missing"
    if row.version < item["version"]:
        return "outdated"
    if row.version > item["version"]:
        return None  # an event newer than the page read has been applied since: it wins
    payload = CaseChanged.model_validate(item["payload"])
    if (row.bureau_id, row.bureau_path) != (item["bureau_id"], item["bureau_path"]):
        return "altered"
    for name in COMPARED:
        if getattr(row, name) != getattr(payload, name):
            return "altered"
    return None


async def _repair_page(
    session: AsyncSession, items: list[dict[str, Any]], found: dict[str, list[int]]
) -> None:
    conn = await session.connection()
    ids = [item["case_id"] for item in items]
    rows = {r.case_id: r for r in (await conn.execute(_FACTS, {"ids": ids})).all()}
    for item in items:
        why = _differs(rows.get(item["case_id"]), item)
        if why is None:
            continue
        await conn.execute(_CASE_LOCK, {"key": f"case:{item['case_id']}"})
        changed = await service.apply_case(
            session,
            CaseChanged.model_validate(item["payload"]),
            version=item["version"],
            event_id=uuid.uuid4(),
            bureau_id=item["bureau_id"],
            bureau_path=item["bureau_path"],
        )
        if changed:
            found[why].append(item["case_id"])


async def _drop(session: AsyncSession, case_ids: list[int], found: dict[str, list[int]]) -> None:
    conn = await session.connection()
    for case_id in case_ids:
        await conn.execute(_CASE_LOCK, {"key": f"case:{case_id}"})
        if await service.drop_case(session, case_id):
            found["vanished"].append(case_id)


async def reconcile(
    sessionmaker: async_sessionmaker[AsyncSession],
    services: ServiceClient,
    *,
    trigger: str,
    requested_by: str | None = None,
) -> ReconciliationRun:
    """One run: compare, repair, record. Idempotent: a second run right after repairs nothing."""
    async with sessionmaker() as session:
        run = ReconciliationRun(trigger=trigger, requested_by=requested_by, status="running")
        session.add(run)
        await session.commit()
        run_id = run.id
    found: dict[str, list[int]] = {"missing": [], "outdated": [], "altered": [], "vanished": []}
    seen = 0
    error: str | None = None
    try:
        after = 0
        while True:
            page = await services.get(FEED, params={"after": after, "limit": PAGE_SIZE})
            items = page["items"]
            seen += len(items)
            async with sessionmaker() as session:
                await _repair_page(session, items, found)
                conn = await session.connection()
                if items:
                    upto = items[-1]["case_id"]
                    gone = (
                        (
                            await conn.execute(
                                _VANISHED_BETWEEN,
                                {"after": after, "upto": upto, "ids": [i["case_id"] for i in items]},
                            )
                        )
                        .scalars()
                        .all()
                    )
                else:
                    gone = []
                if page["next_cursor"] is None:
                    last = items[-1]["case_id"] if items else after
                    gone = [*gone, *(await conn.execute(_VANISHED_AFTER, {"after": last})).scalars().all()]
                await _drop(session, list(gone), found)
                await session.commit()
            if page["next_cursor"] is None:
                break
            after = items[-1]["case_id"]
        async with sessionmaker() as session:
            await bureaus.refresh_unknown_systems(await session.connection(), services)
            await session.commit()
        if any(found.values()):
            # A fact that drifted by hand (or a lost write) left figures that no delta knows of:
            # recompute them from the repaired facts.
            async with sessionmaker() as session:
                rebuilt = await rebuild(await session.connection(), today=today())
                await session.commit()
            log.info("aggregates rebuilt after repairs", extra=rebuilt)
    except Exception as exc:  # recorded on the run, and raised for the job to show
        error = repr(exc)[:4000]
        log.exception("reconciliation failed", extra={"run_id": run_id})
    async with sessionmaker() as session:
        run = await session.get(ReconciliationRun, run_id)
        assert run is not None
        run.finished_at = utcnow()
        run.status = "failed" if error else "succeeded"
        run.error = error
        run.cases_seen = seen
        run.facts_seen = seen - len(found["missing"])
        run.missing = len(found["missing"])
        run.outdated = len(found["outdated"]) + len(found["altered"])
        run.vanished = len(found["vanished"])
        run.repaired_ids = {kind: ids[:KEPT_IDS] for kind, ids in found.items()}
        session.add(run)
        await session.commit()
        await session.refresh(run)
    return run
