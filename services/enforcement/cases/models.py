"""Tables of the administrative penalty procedure (行政处罚程序): leads, cases, the officers
of a case, its timeline, excluded periods, evidence, penalty items and payments."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from services.enforcement.base import (
    EnforcementModel,
    fk_column,
    id_column,
    instant_column,
    money_column,
    path_prefix_index,
)


class LeadSource(StrEnum):
    INSPECTION_REFERRAL = "inspection_referral"  # a non-compliant inspection (监督检查) of the registry
    COMPLAINT = "complaint"  # 投诉
    REPORT = "report"  # 举报
    TRANSFER_IN = "transfer_in"  # transferred from another authority (移送)
    ASSIGNED_FROM_ABOVE = "assigned_from_above"  # assigned by a higher bureau (交办)


class LeadState(StrEnum):
    VERIFYING = "verifying"  # 核查
    OPENED = "opened"  # 立案
    DECLINED = "declined"  # 不予立案


class CaseState(StrEnum):
    OPENED = "opened"
    INVESTIGATING = "investigating"
    SUSPENDED = "suspended"
    INVESTIGATION_CLOSED = "investigation_closed"
    UNDER_REVIEW = "under_review"
    REVIEWED = "reviewed"
    NOTIFIED = "notified"
    HEARING = "hearing"
    HEARD = "heard"
    DECIDED = "decided"
    SERVED = "served"
    EXECUTING = "executing"
    CLOSED = "closed"
    ARCHIVED = "archived"
    PUBLISHED = "published"
    TERMINATED = "terminated"
    TRANSFERRED = "transferred"


class Procedure(StrEnum):
    ORDINARY = "ordinary"  # 普通程序
    SIMPLE = "simple"  # 简易程序 (on the spot)


class DecisionKind(StrEnum):
    PENALTY = "penalty"
    NO_PENALTY = "no_penalty"


class ReviewState(StrEnum):
    NOT_REQUESTED = "not_requested"
    REQUESTED = "requested"
    AGREED = "agreed"
    CORRECTED = "corrected"
    RETURNED = "returned"


class RegistryActionState(StrEnum):
    """Where a decision's certificate action stands in the registry (the closed loop)."""

    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


class Lead(EnforcementModel, table=True):
    """A lead (案件线索): material that may become a case, to be decided within its deadline."""

    __table_args__ = (path_prefix_index("lead"),)

    id: int | None = id_column()
    bureau_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    bureau_path: str = Field(max_length=512)
    source: LeadSource = Field(sa_type=String(24))
    source_ref: str | None = Field(default=None, max_length=128)
    # A referral's inspection: unique, so a redelivered referral never makes a second lead.
    inspection_id: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True))
    subject_type: str = Field(sa_type=String(24))
    subject_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    subject_name: str = Field(max_length=256)
    summary: str = Field(sa_type=Text)
    received_on: date = Field(sa_type=Date)
    rule_set: str = Field(max_length=32)
    state: LeadState = Field(default=LeadState.VERIFYING, sa_type=String(16))
    extension_days: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    decided_on: date | None = Field(default=None, sa_type=Date)
    decline_reason: str | None = Field(default=None, sa_type=Text)
    next_due: date | None = Field(default=None, sa_type=Date)
    case_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    recorded_by: str = Field(max_length=64)
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()


class Case(EnforcementModel, table=True):
    """A case (案件) of the administrative penalty procedure, with both "major" flags."""

    __table_args__ = (
        path_prefix_index("case"),
        UniqueConstraint("bureau_id", "number", name="uq_case_bureau_id_number"),
        Index("ix_case_next_due", "next_due"),
        Index("ix_case_state", "state"),
    )

    id: int | None = id_column()
    number: str = Field(max_length=64)
    bureau_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    bureau_path: str = Field(max_length=512)
    lead_id: int | None = Field(default=None, sa_column=Column(BigInteger, ForeignKey("lead.id"), index=True))
    procedure: Procedure = Field(default=Procedure.ORDINARY, sa_type=String(16))
    state: CaseState = Field(default=CaseState.OPENED, sa_type=String(24))
    title: str = Field(max_length=256)
    party_name: str = Field(max_length=256)
    party_kind: str = Field(sa_type=String(16))
    subject_type: str = Field(sa_type=String(24))
    subject_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    rule_set: str = Field(max_length=32)
    opened_on: date = Field(sa_type=Date)
    decision_extension_days: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    facts: str | None = Field(default=None, sa_type=Text)
    legal_basis: str | None = Field(default=None, sa_type=Text)
    violation_regulation: str | None = Field(default=None, max_length=48)
    violation_code: str | None = Field(default=None, max_length=64, index=True)
    goods_value: Decimal | None = money_column(nullable=True)
    # Major, meaning 1: legal review (法制审核) and collective decision before deciding.
    needs_legal_review: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    legal_review_categories: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String(48)), nullable=False, server_default="{}")
    )
    # Major, meaning 2: filed (备案) with the legal-affairs body of the level above after closing.
    needs_filing: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    circumstances: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String(48)), nullable=False, server_default="{}")
    )
    flag_reasons: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    )
    review_state: ReviewState = Field(default=ReviewState.NOT_REQUESTED, sa_type=String(16))
    review_kind: str | None = Field(default=None, max_length=16)  # legal (法制审核) | case (案件审核)
    review_requested_on: date | None = Field(default=None, sa_type=Date)
    review_opinion: str | None = Field(default=None, sa_type=Text)
    notice_served_on: date | None = Field(default=None, sa_type=Date)
    statement_waived: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    hearing_requested_on: date | None = Field(default=None, sa_type=Date)
    hearing_held_on: date | None = Field(default=None, sa_type=Date)
    decision_kind: DecisionKind | None = Field(default=None, sa_type=String(16))
    decided_on: date | None = Field(default=None, sa_type=Date)
    collective_decision: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    service_method: str | None = Field(default=None, max_length=24)
    served_on: date | None = Field(default=None, sa_type=Date)
    execution_completed_on: date | None = Field(default=None, sa_type=Date)
    closed_on: date | None = Field(default=None, sa_type=Date)
    transferred_to: str | None = Field(default=None, max_length=256)
    published_on: date | None = Field(default=None, sa_type=Date)
    fine_decided: Decimal = money_column(zero=True)
    fine_current: Decimal = money_column(zero=True)
    paid_total: Decimal = money_column(zero=True)
    # Court enforcement (申请法院强制执行): the reminder (催告) served, then the application.
    payment_reminded_on: date | None = Field(default=None, sa_type=Date)
    court_enforcement_applied_on: date | None = Field(default=None, sa_type=Date)
    last_step_on: date | None = Field(default=None, sa_type=Date)  # no step is dated before it
    # The earliest running deadline, kept with each step so "overdue" is an indexed filter.
    next_due: date | None = Field(default=None, sa_type=Date)
    next_due_rule: str | None = Field(default=None, max_length=48)
    created_by: str = Field(max_length=64)
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()


class CaseSubject(EnforcementModel, table=True):
    """A registry record a case concerns (the party's enterprise, a certificate, a body…)."""

    __tablename__ = "case_subject"

    case_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("case.id", ondelete="CASCADE"), primary_key=True)
    )
    subject_type: str = Field(sa_column=Column(String(24), primary_key=True))
    subject_id: int = Field(sa_column=Column(BigInteger, primary_key=True, index=True))
    name: str = Field(max_length=256)
    number: str | None = Field(default=None, max_length=64)


class CaseOfficer(EnforcementModel, table=True):
    """An officer assigned to a case (承办人员); a release is recorded, never deleted."""

    __tablename__ = "case_officer"
    __table_args__ = (
        Index(
            "uq_case_officer_current",
            "case_id",
            "officer_id",
            unique=True,
            postgresql_where=text("released_on IS NULL"),
        ),
    )

    id: int | None = id_column()
    case_id: int = fk_column("case.id")
    officer_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    name: str = Field(max_length=64)
    credential_number: str = Field(max_length=32)
    post_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    assigned_on: date = Field(sa_type=Date)
    assigned_by: str = Field(max_length=64)
    released_on: date | None = Field(default=None, sa_type=Date)
    release_reason: str | None = Field(default=None, sa_type=Text)


class ProcedureStep(EnforcementModel, table=True):
    """One entry of a lead's or a case's timeline: who took which step, under which post,
    when, why and on which legal basis."""

    __tablename__ = "procedure_step"
    __table_args__ = (Index("ix_procedure_step_case_id_id", "case_id", "id"),)

    id: int | None = id_column()
    lead_id: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))
    case_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    step: str = Field(max_length=48)
    from_state: str | None = Field(default=None, max_length=24)
    to_state: str | None = Field(default=None, max_length=24)
    occurred_on: date = Field(sa_type=Date)
    account_id: str = Field(max_length=64)
    officer_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    officer_name: str | None = Field(default=None, max_length=64)
    post_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    post_name: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, sa_type=Text)
    legal_basis: str | None = Field(default=None, sa_type=Text)
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    )
    recorded_at: datetime = instant_column()


class ExcludedInterval(EnforcementModel, table=True):
    """A period that does not count towards a deadline (suspension, hearing, public notice,
    testing): recorded, never an edit of the deadline."""

    __tablename__ = "excluded_interval"

    id: int | None = id_column()
    lead_id: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))
    case_id: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))
    kind: str = Field(max_length=32)
    starts_on: date = Field(sa_type=Date)
    ends_on: date | None = Field(default=None, sa_type=Date)
    note: str | None = Field(default=None, sa_type=Text)


class PenaltyItem(EnforcementModel, table=True):
    """One sanction of a proposal or a decision, with its decided and current amounts."""

    __tablename__ = "penalty_item"

    id: int | None = id_column()
    case_id: int = fk_column("case.id")
    stage: str = Field(max_length=16)  # proposed | decided
    kind: str = Field(max_length=32)
    amount_initial: Decimal | None = money_column(nullable=True)
    amount_current: Decimal | None = money_column(nullable=True)
    # False once a reconsideration or a court set the sanction aside (the initial one is kept).
    in_force: bool = Field(default=True, sa_column=Column(Boolean, nullable=False, server_default="true"))
    certificate_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    certificate_number: str | None = Field(default=None, max_length=64)
    registry_event_id: str | None = Field(default=None, max_length=36, index=True)
    registry_state: str | None = Field(default=None, max_length=16)
    registry_reason: str | None = Field(default=None, sa_type=Text)


class Evidence(EnforcementModel, table=True):
    """An entry of the evidence register (证据登记)."""

    id: int | None = id_column()
    case_id: int = fk_column("case.id")
    kind: str = Field(max_length=32)
    description: str = Field(sa_type=Text)
    collected_on: date = Field(sa_type=Date)
    measure: str = Field(default="none", max_length=24)  # none | preservation | seizure
    measure_started_on: date | None = Field(default=None, sa_type=Date)
    measure_extended: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    measure_extended_on: date | None = Field(default=None, sa_type=Date)
    measure_decided_on: date | None = Field(default=None, sa_type=Date)
    # What a preservation was decided into: test | return | transfer | seize | release | confiscate.
    measure_decision: str | None = Field(default=None, max_length=16)
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = instant_column()


class Payment(EnforcementModel, table=True):
    """A payment towards a decision: fine or late surcharge (加处罚款), possibly one instalment."""

    id: int | None = id_column()
    case_id: int = fk_column("case.id")
    paid_on: date = Field(sa_type=Date)
    amount: Decimal = money_column()
    kind: str = Field(max_length=16)  # fine | surcharge
    reference: str | None = Field(default=None, max_length=64)
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = instant_column()


class CaseNumberCounter(EnforcementModel, table=True):
    """The last case number given by a bureau in a year (案件编号)."""

    __tablename__ = "case_number_counter"

    bureau_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    year: int = Field(sa_column=Column(Integer, primary_key=True))
    last: int = Field(sa_column=Column(Integer, nullable=False))


class BureauDocumentPrefix(EnforcementModel, table=True):
    """A bureau's document prefix (文号), e.g. 浙质监罚字: the case number reads 浙质监罚字〔2008〕12号."""

    __tablename__ = "bureau_document_prefix"

    bureau_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    prefix: str = Field(max_length=32)


class CaseHearing(EnforcementModel, table=True):
    """The hearing's own timetable (听证): host named, files handed, date fixed, notices, the
    hearing held and its report. One a case; each date is checked against the rule set."""

    __tablename__ = "case_hearing"

    case_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("case.id", ondelete="CASCADE"), primary_key=True)
    )
    host: str | None = Field(default=None, max_length=64)  # 听证主持人
    host_named_on: date | None = Field(default=None, sa_type=Date)
    files_handed_on: date | None = Field(default=None, sa_type=Date)
    date_fixed_on: date | None = Field(default=None, sa_type=Date)
    hearing_date: date | None = Field(default=None, sa_type=Date)
    public: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    notice_served_on: date | None = Field(default=None, sa_type=Date)
    public_notice_on: date | None = Field(default=None, sa_type=Date)
    held_on: date | None = Field(default=None, sa_type=Date)
    report_on: date | None = Field(default=None, sa_type=Date)
    updated_by: str = Field(max_length=64)
    updated_at: datetime = instant_column()
