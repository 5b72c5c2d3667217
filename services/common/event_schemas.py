"""Payloads of the events the services exchange, one model per event type.

They live here, not in the producing service, because producer and consumer
are different services that may not import each other: both read the same
model. A change a consumer could not read is a new schema version in
``services.common.events.EVENT_TYPES``. Payloads refuse unknown fields, so a
producer cannot send what the catalogue does not describe.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Body = Literal["supervision", "enforcement", "legal"]
CertificateAction = Literal["suspend", "revoke", "restore"]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- registry ---------------------------------------------------------------


class OfficerChanged(Payload):
    """An officer's standing changed: deactivated, reactivated, or moved to another bureau or body."""

    officer_id: int
    bureau_id: int
    bureau_path: str
    active: bool
    body: Body


class InspectionReferred(Payload):
    """A non-compliant inspection (监督检查) referred to the enforcement body as a lead."""

    inspection_id: int
    target_type: str = Field(max_length=64, description="What was inspected: certificate, enterprise…")
    target_id: int
    target_name: str = Field(max_length=256)
    result: str = Field(max_length=32, description="The inspection's conclusion code")
    findings: str = Field(max_length=2000)
    inspected_on: date
    bureau_id: int


class CertificateStatusChanged(Payload):
    """A certificate's status changed in the registry (suspended, revoked, restored, expired…)."""

    certificate_id: int
    number: str = Field(max_length=64)
    scheme: str = Field(max_length=64)
    from_status: str = Field(max_length=32)
    to_status: str = Field(max_length=32)
    reason: str = Field(max_length=2000)
    case_ref: str | None = Field(default=None, max_length=64, description="The case that caused it, if any")
    changed_at: datetime


class CertificateActionAnswer(Payload):
    """The registry's answer to a decided certificate action."""

    decision_event_id: uuid.UUID = Field(
        description="Id of the `enforcement.certificate_action.decided` event"
    )
    certificate_id: int | None = Field(description="Null when the registry holds no such certificate")
    certificate_number: str = Field(max_length=64)
    action: CertificateAction
    reason: str = Field(max_length=2000)


class CertificateActionApplied(CertificateActionAnswer):
    """The certificate was suspended, revoked or restored as decided."""


class CertificateActionRejected(CertificateActionAnswer):
    """The action could not be applied; ``reason`` says why (unknown certificate, already revoked…)."""


# --- enforcement ------------------------------------------------------------


class CertificateActionDecided(Payload):
    """A penalty decision suspends, revokes or restores a certificate."""

    action: CertificateAction
    certificate_id: int | None = Field(description="The registry's id, when the case knows it")
    certificate_number: str = Field(max_length=64)
    case_ref: str = Field(max_length=64)
    reason: str = Field(max_length=2000)
    decided_on: date


class LeadChanged(Payload):
    """A lead (案件线索) was registered or changed state: the facts statistics keep of it."""

    lead_id: int
    state: str = Field(max_length=32)
    source: str = Field(max_length=32)
    subject_type: str = Field(max_length=32)
    subject_id: int
    received_on: date
    decided_on: date | None = None
    next_due: date | None = Field(default=None, description="The decide-to-open deadline while it runs")
    case_id: int | None = None
    inspection_id: int | None = Field(default=None, description="The referring inspection, if any")


class CaseChanged(Payload):
    """A case (案件) was opened or changed: the facts statistics keep of it, money in yuan."""

    case_id: int
    number: str = Field(max_length=64)
    lead_id: int | None = None
    procedure: str = Field(max_length=16)
    state: str = Field(max_length=32)
    subject_type: str = Field(max_length=32)
    subject_id: int
    party_kind: str = Field(max_length=16)
    violation_regulation: str | None = Field(default=None, max_length=48)
    violation_code: str | None = Field(default=None, max_length=64)
    opened_on: date
    decided_on: date | None = None
    closed_on: date | None = None
    decision_kind: str | None = Field(default=None, max_length=16)
    penalty_kinds: list[str] = Field(default_factory=list, description="Kinds of the decided sanctions")
    fine_decided: Decimal = Field(description="Yuan, as decided")
    fine_current: Decimal = Field(description="Yuan, after any reconsideration or appeal")
    confiscation: Decimal = Field(description="Yuan confiscated, as decided")
    paid_total: Decimal = Field(description="Yuan collected (fine and surcharge)")
    transferred_to: str | None = Field(default=None, max_length=256)
    transferred_to_judicial_organ: bool = False
    needs_legal_review: bool = Field(description="Major case: legal review before decision (法制审核)")
    needs_filing: bool = Field(description="Major case: filed with the level above (重大案件备案)")
    next_due: date | None = Field(default=None, description="The earliest running deadline")
    next_due_rule: str | None = Field(default=None, max_length=48)
    officer_count: int = Field(description="Officers currently assigned")


class ReviewRequested(Payload):
    """A case entered the legal-review queue (法制审核) of the legal-affairs body."""

    case_id: int
    number: str = Field(max_length=64)
    requested_on: date
    officer_ids: list[int] = Field(description="Officers of the case, who may never review it")
    categories: list[str] = Field(default_factory=list, description="Why it is major")
    review_kind: Literal["legal", "case"] = Field(
        default="legal",
        description="Legal review of a major case (法制审核), or case review (案件审核) of any other (v2)",
    )


# --- statistics -------------------------------------------------------------


ReviewOpinion = Literal["agree", "correct", "investigate_further"]


class CorrectedPenalty(Payload):
    """A sanction as the reviewer corrects it, in the shape enforcement's proposal takes."""

    kind: str = Field(max_length=32)
    amount: Decimal | None = Field(default=None, description="Yuan, for a fine or a confiscation")
    certificate_id: int | None = None


class ReviewAnswered(Payload):
    """The legal review's conclusion: the decision gate opens, or the case is returned.

    ``outcome`` is what a version-1 consumer reads (``approved`` for agree and correct);
    ``opinion`` (version 2) says which: agree → REVIEW_AGREE, correct → REVIEW_CORRECT with
    ``penalties`` (and a corrected violation, if any), investigate_further → REVIEW_RETURN."""

    review_id: int
    case_id: int
    outcome: Literal["approved", "returned"]
    reason: str | None = Field(default=None, max_length=2000)
    opinion: ReviewOpinion | None = Field(default=None, description="The reviewer's opinion (v2)")
    answered_on: date | None = Field(default=None, description="The legal date of the answer (v2)")
    penalties: list[CorrectedPenalty] | None = Field(
        default=None, max_length=20, description="For `correct`: the corrected sanctions (v2)"
    )
    violation_code: str | None = Field(default=None, max_length=64, description="For `correct` (v2)")
    violation_regulation: str | None = Field(default=None, max_length=48, description="For `correct` (v2)")
    reviewer_officer_id: int | None = Field(default=None, description="The reviewing officer (v2)")
    reviewer_name: str | None = Field(default=None, max_length=100, description="(v2)")
    reviewer_post_id: int | None = Field(default=None, description="The reviewer's post (岗位) (v2)")
    reviewer_post_name: str | None = Field(default=None, max_length=200, description="(v2)")


class FilingAnswered(Payload):
    """A major-case filing (备案) was accepted or returned."""

    filing_id: int
    case_id: int
    outcome: Literal["accepted", "returned"]
    reason: str | None = Field(default=None, max_length=2000)
