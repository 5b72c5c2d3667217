"""Facts copied in from the source services' events: one row per lead, per case, and per
certificate status change. A fact row holds the newest aggregate version it was given, so an
older event arriving late changes nothing (order-independent); the event id is the inbox's
idempotency key (a duplicate changes nothing)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ARRAY, BigInteger, Column, DateTime, Index, String, Text, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from services.statistics.base import (
    StatisticsModel,
    id_column,
    instant_column,
    money_column,
    path_prefix_index,
)

# The fact's bureau's system when the fact was applied; null until the registry has told it
# (the aggregates count it under "unknown", and refresh_bureaus moves it once known).
SYSTEM_DOC = "quality_supervision / entry_exit, from bureau_dimension; null while unknown"
UNKNOWN_SYSTEM_INDEX = "system IS NULL"


class BureauDimension(StatisticsModel, table=True):
    """What statistics knows of a bureau (from the registry): its place in the tree and system."""

    __tablename__ = "bureau_dimension"

    bureau_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    bureau_path: str = Field(max_length=255, index=True)
    parent_id: int | None = Field(default=None, sa_type=BigInteger)
    level: str = Field(max_length=16, description="national / province / city / county / branch")
    system: str | None = Field(default=None, max_length=32, description="quality_supervision / entry_exit")
    division_code: str | None = Field(default=None, max_length=6)
    name: str = Field(max_length=200)
    refreshed_at: datetime = instant_column()


class LeadFact(StatisticsModel, table=True):
    __tablename__ = "lead_fact"
    __table_args__ = (
        path_prefix_index("lead_fact"),
        Index("ix_lead_fact_system_unknown", "bureau_id", postgresql_where=text(UNKNOWN_SYSTEM_INDEX)),
    )

    lead_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    version: int = Field(sa_type=BigInteger, description="Aggregate version of the newest event applied")
    event_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    bureau_id: int = Field(sa_type=BigInteger, index=True)
    bureau_path: str = Field(max_length=255)
    state: str = Field(max_length=32)
    source: str = Field(max_length=32)
    subject_type: str = Field(max_length=32)
    subject_id: int = Field(sa_type=BigInteger)
    received_on: date = Field(index=True)
    decided_on: date | None = None
    next_due: date | None = Field(default=None, index=True)
    case_id: int | None = Field(default=None, sa_type=BigInteger)
    inspection_id: int | None = Field(default=None, sa_type=BigInteger)
    system: str | None = Field(default=None, max_length=32, description=SYSTEM_DOC)
    updated_at: datetime = instant_column()


class CaseFact(StatisticsModel, table=True):
    __tablename__ = "case_fact"
    __table_args__ = (
        path_prefix_index("case_fact"),
        Index("ix_case_fact_next_due", "next_due"),
        Index("ix_case_fact_system_unknown", "bureau_id", postgresql_where=text(UNKNOWN_SYSTEM_INDEX)),
    )

    case_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    version: int = Field(sa_type=BigInteger, description="Aggregate version of the newest event applied")
    event_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    bureau_id: int = Field(sa_type=BigInteger, index=True)
    bureau_path: str = Field(max_length=255)
    number: str = Field(max_length=64)
    lead_id: int | None = Field(default=None, sa_type=BigInteger)
    procedure: str = Field(max_length=16)
    state: str = Field(max_length=32)
    subject_type: str = Field(max_length=32)
    subject_id: int = Field(sa_type=BigInteger)
    party_kind: str = Field(max_length=16)
    violation_code: str | None = Field(default=None, max_length=64)
    opened_on: date = Field(index=True)
    decided_on: date | None = None
    closed_on: date | None = None
    decision_kind: str | None = Field(default=None, max_length=16)
    penalty_kinds: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String(32)), nullable=False, server_default="{}")
    )
    fine_decided: Decimal = money_column(zero=True)
    fine_current: Decimal = money_column(zero=True)
    confiscation: Decimal = money_column(zero=True)
    paid_total: Decimal = money_column(zero=True)
    transferred_to_judicial_organ: bool = False
    needs_legal_review: bool = False
    needs_filing: bool = False
    next_due: date | None = None
    next_due_rule: str | None = Field(default=None, max_length=48)
    officer_count: int = 0
    # Kept by the legal-affairs domain: the filing's deadline once one is expected, and the day it was filed.
    filing_due: date | None = None
    filed_on: date | None = None
    system: str | None = Field(default=None, max_length=32, description=SYSTEM_DOC)
    updated_at: datetime = instant_column()


class CertificateStatusFact(StatisticsModel, table=True):
    """One certificate status change (suspensions and revocations are counted), by the event's
    bureau; the event id is the key, so a duplicate is one row."""

    __tablename__ = "certificate_status_fact"
    __table_args__ = (
        path_prefix_index("certificate_status_fact"),
        Index(
            "ix_certificate_status_fact_system_unknown",
            "bureau_id",
            postgresql_where=text(UNKNOWN_SYSTEM_INDEX),
        ),
    )

    event_id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    certificate_id: int = Field(sa_type=BigInteger, index=True)
    bureau_id: int = Field(sa_type=BigInteger)
    bureau_path: str = Field(max_length=255)
    scheme: str = Field(max_length=64)
    from_status: str = Field(max_length=32)
    to_status: str = Field(max_length=32)
    case_ref: str | None = Field(default=None, max_length=64)
    changed_on: date = Field(index=True, description="Asia/Shanghai date of the change")
    system: str | None = Field(default=None, max_length=32, description=SYSTEM_DOC)


class ReconciliationRun(StatisticsModel, table=True):
    """One comparison of the case facts with enforcement (对账), and what it repaired."""

    __tablename__ = "reconciliation_run"

    id: int | None = id_column()
    started_at: datetime = instant_column()
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    trigger: str = Field(max_length=16, description="cron / request")
    requested_by: str | None = Field(default=None, max_length=128)
    status: str = Field(max_length=16, description="running / succeeded / failed")
    cases_seen: int = 0
    facts_seen: int = 0
    missing: int = Field(default=0, description="Cases enforcement has and the facts had not")
    outdated: int = Field(default=0, description="Facts older than enforcement's version")
    vanished: int = Field(default=0, description="Facts of cases enforcement no longer has")
    repaired_ids: dict = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default="{}"),
        description='{"missing": [case ids], "outdated": [...], "vanished": [...]} (first 1000 of each)',
    )
    error: str | None = Field(default=None, sa_type=Text)
