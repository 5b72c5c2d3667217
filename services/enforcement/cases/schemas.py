"""Request and response models of leads and cases."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.common.dates import LegalDate, PastDate
from services.common.types import EntityId, Flag, InputModel, Money, PositiveMoney
from services.enforcement.cases.models import (
    CaseState,
    DecisionKind,
    LeadSource,
    LeadState,
    Procedure,
    ReviewState,
)
from services.enforcement.registry import SubjectType

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Yuan = Money  # a decimal string in yuan, e.g. "12000.00"
PartyKindCode = Literal["natural_person", "organisation"]
PenaltyKindCode = Literal[
    "warning",
    "fine",
    "confiscation",
    "order_to_correct",
    "order_to_stop",
    "suspend_certificate",
    "revoke_certificate",
    "revoke_approval",
]
LegalReviewCategory = Literal[
    "major_public_interest", "major_rights_after_hearing", "complex_facts", "other_by_law"
]
Circumstance = Literal[
    "assigned_or_supervised_from_above",
    "foreign_related",
    "reconsideration_or_litigation",
    "transferred_to_judicial_organ",
]
ServiceMethod = Literal[
    "in_person", "left_at_residence", "by_post", "entrusted", "electronic", "public_notice"
]


# --- leads -----------------------------------------------------------------


class LeadCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "complaint",
                    "source_ref": "浙投诉〔2026〕38号",
                    "subject_type": "enterprise",
                    "subject_id": 42,
                    "summary": "投诉称该企业销售的电饭锅未获强制性产品认证",
                    "received_on": "2026-03-02",
                }
            ]
        }
    )

    source: LeadSource
    source_ref: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        default=None, description="The complaint's or transfer's own reference"
    )
    subject_type: SubjectType = Field(description="The registry record the lead concerns")
    subject_id: EntityId
    summary: Text
    received_on: PastDate = Field(description="Date the lead was discovered or the material received")
    bureau_id: EntityId | None = Field(
        default=None, description="The handling bureau (default: the caller's)"
    )


class LeadRead(BaseModel):
    id: int
    bureau_id: int
    source: LeadSource
    source_ref: str | None
    inspection_id: int | None
    subject_type: str
    subject_id: int
    subject_name: str
    summary: str
    received_on: date
    rule_set: str
    state: LeadState
    extension_days: int
    next_due: date | None
    overdue: bool
    decided_on: date | None
    decline_reason: str | None
    case_id: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class CaseOpening(InputModel):
    """What the head's approval to open a case (立案审批) fixes."""

    title: ShortText
    party_name: ShortText
    party_kind: PartyKindCode
    officer_ids: list[EntityId] = Field(default_factory=list, max_length=20)
    certificate_ids: list[EntityId] = Field(
        default_factory=list, max_length=50, description="Certificates the case concerns, besides its subject"
    )


class LeadTransition(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "step": "open_case",
                    "occurred_on": "2026-03-09",
                    "case": {
                        "title": "杭州某某电器有限公司未经认证出厂销售电饭锅案",
                        "party_name": "杭州某某电器有限公司",
                        "party_kind": "organisation",
                        "officer_ids": [101, 102],
                        "certificate_ids": [],
                    },
                }
            ]
        }
    )

    step: Literal["extend_lead_deadline", "open_case", "decline_lead"]
    reason: Text | None = None
    legal_basis: Text | None = None
    occurred_on: PastDate | None = Field(default=None, description="Date of the step (default: today)")
    extension_days: Annotated[int, Field(ge=1, le=365)] | None = None
    case: CaseOpening | None = Field(default=None, description="For open_case: the case to open")


# --- cases -----------------------------------------------------------------


class PenaltyIn(InputModel):
    kind: PenaltyKindCode
    amount: Yuan | None = Field(default=None, description="Yuan, for a fine or a confiscation")
    certificate_id: EntityId | None = Field(
        default=None, description="For a certificate suspension or revocation"
    )


class CaseTransition(InputModel):
    """A step of the procedure: ``step`` names it, the other fields are what it records."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "step": "decide",
                    "occurred_on": "2026-05-20",
                    "facts": "当事人未经强制性产品认证出厂销售电饭锅 1200 台",
                    "legal_basis": "《中华人民共和国认证认可条例》第六十六条",
                    "violation_code": "uncertified-ccc-product",
                    "goods_value": "96000.00",
                    "penalties": [{"kind": "fine", "amount": "80000.00"}],
                }
            ]
        }
    )

    step: Literal[
        "start_investigation",
        "suspend_investigation",
        "resume_investigation",
        "terminate",
        "transfer",
        "close_investigation",
        "request_review",
        "review_agree",
        "review_correct",
        "review_return",
        "serve_prior_notice",
        "request_hearing",
        "conclude_hearing",
        "extend_decision_deadline",
        "decide",
        "decide_no_penalty",
        "serve_decision",
        "revise_decision",
        "remind_payment",
        "apply_court_enforcement",
        "close_case",
        "archive",
        "publish",
    ]
    occurred_on: PastDate | None = Field(default=None, description="Date of the step (default: today)")
    reason: Text | None = None
    legal_basis: Text | None = None
    facts: Text | None = None
    violation_code: Code | None = None
    violation_regulation: Code | None = None
    goods_value: Yuan | None = None
    penalties: list[PenaltyIn] | None = Field(default=None, max_length=20)
    legal_review_categories: list[LegalReviewCategory] | None = Field(
        default=None, max_length=len(get_args(LegalReviewCategory))
    )
    circumstances: list[Circumstance] | None = Field(default=None, max_length=len(get_args(Circumstance)))
    transferred_to: ShortText | None = None
    extension_days: Annotated[int, Field(ge=1, le=365)] | None = None
    service_method: ServiceMethod | None = None
    collective_decision: Flag | None = Field(
        default=None, description="Decided by the heads collectively (集体讨论)"
    )
    statement_waived: Flag | None = Field(default=None, description="The party waived statement and defence")
    suspension_kind: Literal["investigation_suspended", "testing"] | None = None


class SimpleCaseCreate(InputModel):
    """A case decided on the spot (简易程序): a warning or a small fine."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "procedure": "simple",
                    "title": "杭州某某电器有限公司未按规定使用认证标志案",
                    "party_name": "杭州某某电器有限公司",
                    "party_kind": "organisation",
                    "subject_type": "enterprise",
                    "subject_id": 42,
                    "facts": "检查中发现当事人产品铭牌上的认证标志未按规定加施",
                    "legal_basis": "《强制性产品认证管理规定》",
                    "violation_code": "misused-marks",
                    "violation_regulation": "ccc-rules-2022",
                    "penalties": [{"kind": "warning"}],
                    "officer_ids": [101, 102],
                }
            ]
        }
    )

    procedure: Literal["simple"]
    title: ShortText
    party_name: ShortText
    party_kind: PartyKindCode
    subject_type: SubjectType
    subject_id: EntityId
    facts: Text
    legal_basis: Text
    violation_code: Code
    violation_regulation: Code | None = None
    penalties: list[PenaltyIn] = Field(min_length=1, max_length=5)
    decided_on: PastDate | None = None
    officer_ids: list[EntityId] = Field(min_length=2, max_length=20)
    bureau_id: EntityId | None = None


class OfficersAssign(InputModel):
    officer_ids: list[EntityId] = Field(min_length=1, max_length=20)
    reason: Text
    occurred_on: PastDate | None = None


class EvidenceCreate(InputModel):
    kind: Literal[
        "documentary",
        "physical",
        "audio_visual",
        "electronic_data",
        "witness_testimony",
        "party_statement",
        "expert_opinion",
        "inspection_record",
    ] = Field(description="The eight evidence types (证据种类)")
    description: Text
    collected_on: PastDate
    measure: Literal["none", "preservation", "seizure"] = "none"
    measure_started_on: PastDate | None = None


class PaymentCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "amount": "80000.00",
                    "paid_on": "2026-06-10",
                    "kind": "fine",
                    "reference": "非税收入缴款书 3301202606100012",
                }
            ]
        }
    )

    amount: PositiveMoney
    paid_on: PastDate
    kind: Literal["fine", "surcharge"] = "fine"
    reference: Annotated[str, StringConstraints(max_length=64)] | None = None


class PenaltyRead(BaseModel):
    id: int
    stage: str
    kind: str
    amount_initial: Decimal | None = Field(description="As decided (yuan)")
    amount_current: Decimal | None = Field(description="After any reconsideration or litigation (yuan)")
    in_force: bool
    certificate_id: int | None
    certificate_number: str | None
    registry_state: str | None
    registry_reason: str | None


class OfficerRead(BaseModel):
    officer_id: int
    name: str
    credential_number: str
    post_id: int | None
    assigned_on: date
    released_on: date | None
    release_reason: str | None


class SubjectRead(BaseModel):
    subject_type: str
    subject_id: int
    name: str
    number: str | None


class CaseRead(BaseModel):
    id: int
    number: str
    bureau_id: int
    lead_id: int | None
    procedure: Procedure
    state: CaseState
    title: str
    party_name: str
    party_kind: str
    subject_type: str
    subject_id: int
    rule_set: str
    opened_on: date
    facts: str | None
    legal_basis: str | None
    violation_regulation: str | None
    violation_code: str | None
    goods_value: Decimal | None = Field(
        default=None, description="Value of the goods in yuan, when the violation's fine depends on it"
    )
    needs_legal_review: bool
    legal_review_categories: list[str]
    needs_filing: bool
    circumstances: list[str]
    flag_reasons: dict[str, Any]
    review_state: ReviewState
    decision_kind: DecisionKind | None
    decided_on: date | None
    collective_decision: bool
    notice_served_on: date | None
    hearing_requested_on: date | None
    served_on: date | None
    service_method: str | None
    closed_on: date | None
    transferred_to: str | None
    published_on: date | None
    fine_decided: Decimal
    fine_current: Decimal
    paid_total: Decimal
    payment_reminded_on: date | None = None
    court_enforcement_applied_on: date | None = None
    next_due: date | None
    next_due_rule: str | None
    overdue: bool
    version: int
    created_at: datetime
    updated_at: datetime
    officers: list[OfficerRead] = []
    subjects: list[SubjectRead] = []
    penalties: list[PenaltyRead] = []


class CaseSummary(BaseModel):
    id: int
    number: str
    bureau_id: int
    state: CaseState
    procedure: Procedure
    title: str
    party_name: str
    subject_type: str
    subject_id: int
    violation_code: str | None
    needs_legal_review: bool
    needs_filing: bool
    opened_on: date
    decided_on: date | None
    next_due: date | None
    overdue: bool
    version: int


class TimelineEntry(BaseModel):
    id: int
    lead_id: int | None
    case_id: int | None
    step: str
    from_state: str | None
    to_state: str | None
    occurred_on: date
    account_id: str
    officer_id: int | None
    officer_name: str | None
    post_id: int | None
    post_name: str | None
    reason: str | None
    legal_basis: str | None
    details: dict[str, Any]
    recorded_at: datetime


class EvidenceRead(BaseModel):
    id: int
    case_id: int
    kind: str
    description: str
    collected_on: date
    measure: str
    measure_started_on: date | None
    measure_due: date | None = None
    measure_extended: bool = False
    measure_extended_on: date | None = None
    measure_decided_on: date | None = None
    measure_decision: str | None = None
    recorded_at: datetime


class PaymentRead(BaseModel):
    id: int
    case_id: int
    paid_on: date
    amount: Decimal
    kind: str
    reference: str | None
    recorded_at: datetime


class DeadlineRead(BaseModel):
    rule: str
    due: date
    paused: bool = Field(description="An excluded interval (suspension, hearing…) is running")
    overdue: bool
    explanation: dict[str, Any]


class ChainRead(BaseModel):
    """The enforcement chain of a registry record (traceability, 可追溯): its leads and cases."""

    subject_type: str
    subject_id: int
    leads: list[LeadRead]
    cases: list[CaseRead]


# --- the hearing's timetable (听证) ---------------------------------------------


class HearingWrite(InputModel):
    """The hearing's record, whole (PUT): a date left out is not recorded (yet)."""

    host: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = (
        Field(default=None, description="The hearing's host (听证主持人), not one of the case's officers")
    )
    host_named_on: PastDate | None = Field(default=None, description="The day the host was named")
    files_handed_on: PastDate | None = Field(default=None, description="Case files handed to the host")
    date_fixed_on: PastDate | None = Field(default=None, description="The day the hearing's date was fixed")
    hearing_date: LegalDate | None = Field(default=None, description="The day of the hearing")
    public: Flag = Field(default=False, description="A public hearing (公开举行)")
    notice_served_on: PastDate | None = Field(default=None, description="Notice served on the party")
    public_notice_on: PastDate | None = Field(default=None, description="Public notice of a public hearing")
    held_on: PastDate | None = Field(default=None, description="The day the hearing was held")
    report_on: PastDate | None = Field(default=None, description="The hearing report (听证报告) handed in")


class HearingDeadlineRead(BaseModel):
    rule: str
    due: date = Field(description="For a rule counted before the hearing: the latest day")
    met: bool
    met_on: date | None
    late: bool = Field(description="Met after its due date, or not met and past it")
    explanation: dict[str, Any]


class HearingRead(BaseModel):
    case_id: int
    requested_on: date
    host: str | None = None
    host_named_on: date | None = None
    files_handed_on: date | None = None
    date_fixed_on: date | None = None
    hearing_date: date | None = None
    public: bool = False
    notice_served_on: date | None = None
    public_notice_on: date | None = None
    held_on: date | None = None
    report_on: date | None = None
    deadlines: list[HearingDeadlineRead]


# --- evidence measures and execution -----------------------------------------------


class SeizureExtension(InputModel):
    reason: Text
    occurred_on: PastDate | None = Field(default=None, description="Date of the approval (default: today)")


class PreservationDecision(InputModel):
    decision: Literal["test", "return", "transfer", "seize", "release", "confiscate"] = Field(
        description="送检测鉴定 / 退还 / 移送 / 查封扣押 / 解除先行登记保存 / 没收"
    )
    reason: Text
    occurred_on: PastDate | None = Field(default=None, description="Date of the decision (default: today)")
