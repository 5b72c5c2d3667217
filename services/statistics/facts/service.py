"""Facts from the events: one upsert per fact, moving only forward (a newer or equal aggregate
version replaces the row; an older one changes nothing), with the aggregates' deltas in the
same statement. Callers run inside a transaction they own (the inbox's, the reconciliation's).
"""

# ruff: noqa: S608 - statements composed of this module's constant fragments; every value is bound

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.dates import CHINA, today
from services.common.event_schemas import CaseChanged, CertificateStatusChanged, LeadChanged
from services.statistics.aggregates.sql import apply_change, change_statement
from services.statistics.facts import bureaus

# --- case ----------------------------------------------------------------------------------

_CASE_COLUMNS = (
    "case_id, version, event_id, bureau_id, bureau_path, number, lead_id, procedure, state, subject_type, "
    "subject_id, party_kind, violation_code, opened_on, decided_on, closed_on, decision_kind, "
    "penalty_kinds, fine_decided, fine_current, confiscation, paid_total, transferred_to_judicial_organ, "
    "needs_legal_review, needs_filing, next_due, next_due_rule, officer_count, system, updated_at"
)
_CASE_VALUES = (
    ":case_id, :version, CAST(:event_id AS uuid), :bureau_id, :bureau_path, :number, :lead_id, :procedure, "
    ":state, :subject_type, :subject_id, :party_kind, :violation_code, CAST(:opened_on AS date), "
    "CAST(:decided_on AS date), CAST(:closed_on AS date), :decision_kind, "
    "CAST(:penalty_kinds AS varchar[]), :fine_decided, :fine_current, :confiscation, :paid_total, "
    ":transferred_to_judicial_organ, :needs_legal_review, :needs_filing, CAST(:next_due AS date), "
    ":next_due_rule, :officer_count, :system, clock_timestamp()"
)
# Everything but the key, and but filing_due / filed_on (kept by the legal-affairs domain).
_CASE_UPDATED = [c.strip() for c in _CASE_COLUMNS.split(",")][1:]


def _upsert(table: str, key: str, columns: str, values: str, updated: list[str]) -> str:
    sets = ", ".join(
        f"{c} = coalesce(excluded.{c}, {table}.{c})" if c == "system" else f"{c} = excluded.{c}"
        for c in updated
    )
    return f"""INSERT INTO {table} ({columns}) VALUES ({values})
        ON CONFLICT ({key}) DO UPDATE SET {sets}
        WHERE excluded.version >= {table}.version
        RETURNING *"""


CASE_UPSERT = text(
    change_statement(
        "case_fact",
        "case_id = :case_id",
        _upsert("case_fact", "case_id", _CASE_COLUMNS, _CASE_VALUES, _CASE_UPDATED),
    )
)


async def _changed(conn: Any, statement: Any, params: dict[str, Any]) -> bool:
    """Run a fact's change statement with its aggregates' deltas; True if a fact changed."""
    changed, _ = await apply_change(conn, statement, params, today=today())
    return changed > 0


async def _upsert_versioned(
    session: AsyncSession,
    statement: Any,
    fields: dict[str, Any],
    *,
    version: int,
    event_id: uuid.UUID,
    bureau_id: int,
    bureau_path: str,
) -> bool:
    """Upsert a lead's or a case's fact from its event (forward only, by aggregate version)."""
    conn = await session.connection()
    params = {
        **fields,
        "version": version,
        "event_id": event_id,
        "bureau_id": bureau_id,
        "bureau_path": bureau_path,
        "system": await bureaus.system_of(conn, bureau_id),
    }
    return await _changed(conn, statement, params)


async def apply_case(
    session: AsyncSession,
    payload: CaseChanged,
    *,
    version: int,
    event_id: uuid.UUID,
    bureau_id: int,
    bureau_path: str,
) -> bool:
    """Upsert the case's fact (forward only) and its aggregates' deltas; True if it changed."""
    return await _upsert_versioned(
        session,
        CASE_UPSERT,
        payload.model_dump(exclude={"violation_regulation", "transferred_to"}),
        version=version,
        event_id=event_id,
        bureau_id=bureau_id,
        bureau_path=bureau_path,
    )


_DELETE_CASE = text(
    change_statement(
        "case_fact",
        "case_id = :case_id",
        "DELETE FROM case_fact WHERE case_id = :case_id RETURNING *",
        deleting=True,
    )
)


async def drop_case(session: AsyncSession, case_id: int) -> bool:
    """Remove a case's fact (its case vanished from enforcement), with its contributions."""
    return await _changed(await session.connection(), _DELETE_CASE, {"case_id": case_id})


_CASE_FILING = text(
    change_statement(
        "case_fact",
        "case_id = :case_id",
        """UPDATE case_fact SET filing_due = CAST(:filing_due AS date), filed_on = CAST(:filed_on AS date),
            updated_at = clock_timestamp()
        WHERE case_id = :case_id RETURNING *""",
    )
)


async def set_case_filing(
    session: AsyncSession, case_id: int, *, filing_due: date | None, filed_on: date | None
) -> bool:
    """For the legal-affairs domain: the filing's deadline and day on the case's fact, with the
    filing-timeliness figures moved accordingly. False when statistics has no fact of the case."""
    return await _changed(
        await session.connection(),
        _CASE_FILING,
        {"case_id": case_id, "filing_due": filing_due, "filed_on": filed_on},
    )


# --- lead ----------------------------------------------------------------------------------

_LEAD_COLUMNS = (
    "lead_id, version, event_id, bureau_id, bureau_path, state, source, subject_type, subject_id, "
    "received_on, decided_on, next_due, case_id, inspection_id, system, updated_at"
)
_LEAD_VALUES = (
    ":lead_id, :version, CAST(:event_id AS uuid), :bureau_id, :bureau_path, :state, :source, :subject_type, "
    ":subject_id, CAST(:received_on AS date), CAST(:decided_on AS date), CAST(:next_due AS date), :case_id, "
    ":inspection_id, :system, clock_timestamp()"
)
LEAD_UPSERT = text(
    change_statement(
        "lead_fact",
        "lead_id = :lead_id",
        _upsert(
            "lead_fact",
            "lead_id",
            _LEAD_COLUMNS,
            _LEAD_VALUES,
            [c.strip() for c in _LEAD_COLUMNS.split(",")][1:],
        ),
    )
)


async def apply_lead(
    session: AsyncSession,
    payload: LeadChanged,
    *,
    version: int,
    event_id: uuid.UUID,
    bureau_id: int,
    bureau_path: str,
) -> bool:
    return await _upsert_versioned(
        session,
        LEAD_UPSERT,
        payload.model_dump(),
        version=version,
        event_id=event_id,
        bureau_id=bureau_id,
        bureau_path=bureau_path,
    )


# --- certificate status change ---------------------------------------------------------------

CERTIFICATE_INSERT = text(
    change_statement(
        "certificate_status_fact",
        "event_id = CAST(:event_id AS uuid)",
        """INSERT INTO certificate_status_fact
            (event_id, certificate_id, bureau_id, bureau_path, scheme, from_status, to_status, case_ref,
             changed_on, system)
        VALUES (CAST(:event_id AS uuid), :certificate_id, :bureau_id, :bureau_path, :scheme, :from_status,
             :to_status, :case_ref, CAST(:changed_on AS date), :system)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING *""",
    )
)


async def apply_certificate_status(
    session: AsyncSession,
    payload: CertificateStatusChanged,
    *,
    event_id: uuid.UUID,
    bureau_id: int,
    bureau_path: str,
) -> bool:
    """One row per status change (the event id is its key): a duplicate adds nothing."""
    conn = await session.connection()
    changed_on = payload.changed_at.astimezone(CHINA).date()
    params = {
        "event_id": event_id,
        "certificate_id": payload.certificate_id,
        "bureau_id": bureau_id,
        "bureau_path": bureau_path,
        "scheme": payload.scheme,
        "from_status": payload.from_status,
        "to_status": payload.to_status,
        "case_ref": payload.case_ref,
        "changed_on": changed_on,
        "system": await bureaus.system_of(conn, bureau_id),
    }
    return await _changed(conn, CERTIFICATE_INSERT, params)
