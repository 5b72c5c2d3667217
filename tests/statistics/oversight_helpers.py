"""Facts and alerts written straight into the statistics database for the oversight tests, with
ids of their own (tests share the database: they look at their own rows only)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import text

_CITY_PATH = "900000000."  # a bureau path no real bureau of the run has


def new_id() -> int:
    """An id no other test uses (facts' ids are the source services' ids, far below this)."""
    return 10**12 + uuid.uuid4().int % 10**12


async def insert_lead_fact(session, *, next_due: date | None, state: str = "verifying", **extra: Any) -> int:
    lead_id = new_id()
    row = {
        "lead_id": lead_id,
        "version": 1,
        "event_id": uuid.uuid4(),
        "bureau_id": 900,
        "bureau_path": _CITY_PATH,
        "state": state,
        "source": "complaint",
        "subject_type": "enterprise",
        "subject_id": 1,
        "received_on": date(2026, 5, 1),
        "next_due": next_due,
        **extra,
    }
    await session.exec(
        text(
            "INSERT INTO lead_fact (lead_id, version, event_id, bureau_id, bureau_path, state, source, "
            "subject_type, subject_id, received_on, next_due, updated_at) VALUES (:lead_id, :version, "
            ":event_id, :bureau_id, :bureau_path, :state, :source, :subject_type, :subject_id, "
            ":received_on, :next_due, now())"
        ),
        params=row,
    )
    return lead_id


async def insert_case_fact(
    session,
    *,
    next_due: date | None = None,
    next_due_rule: str | None = None,
    state: str = "investigating",
    officer_count: int = 2,
    **extra: Any,
) -> int:
    case_id = new_id()
    row = {
        "case_id": case_id,
        "version": 1,
        "event_id": uuid.uuid4(),
        "bureau_id": 900,
        "bureau_path": _CITY_PATH,
        "number": f"测试〔2026〕{case_id % 100000}号",
        "procedure": "ordinary",
        "state": state,
        "subject_type": "enterprise",
        "subject_id": 1,
        "party_kind": "organisation",
        "opened_on": date(2026, 5, 2),
        "next_due": next_due,
        "next_due_rule": next_due_rule,
        "officer_count": officer_count,
        "flag": False,
        **extra,
    }
    await session.exec(
        text(
            "INSERT INTO case_fact (case_id, version, event_id, bureau_id, bureau_path, number, procedure, "
            "state, subject_type, subject_id, party_kind, opened_on, next_due, next_due_rule, "
            "officer_count, transferred_to_judicial_organ, needs_legal_review, needs_filing, updated_at) "
            "VALUES (:case_id, :version, :event_id, :bureau_id, :bureau_path, "
            ":number, :procedure, :state, :subject_type, :subject_id, :party_kind, :opened_on, :next_due, "
            ":next_due_rule, :officer_count, :flag, :flag, :flag, now())"
        ),
        params=row,
    )
    return case_id


async def alerts_of(session, subject_type: str, subject_ids) -> list[dict]:
    rows = await session.exec(
        text(
            "SELECT key, kind, severity, subject_id, due, details FROM alert "
            "WHERE subject_type = :t AND subject_id = ANY(:ids) ORDER BY key"
        ),
        params={"t": subject_type, "ids": list(subject_ids)},
    )
    return [dict(r) for r in rows.mappings()]


async def cron_runs(session, job: str) -> list[dict]:
    rows = await session.exec(
        text("SELECT * FROM cron_run WHERE job = :job ORDER BY tick"),
        params={"job": job},
    )
    return [dict(r) for r in rows.mappings()]
