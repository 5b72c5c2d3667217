"""Request and response models of the review queue and the major-case filings."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.common.dates import PastDate
from services.common.types import EntityId, InputModel, Money

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
# The sanctions enforcement's proposal takes (its catalogue's penalty kinds).
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
WITH_AMOUNT = {"fine", "confiscation"}
WITH_CERTIFICATE = {"suspend_certificate", "revoke_certificate"}


# --- reviews ---------------------------------------------------------------------


class CorrectedPenaltyIn(InputModel):
    kind: PenaltyKindCode
    amount: Money | None = Field(default=None, description="Yuan, for a fine or a confiscation")
    certificate_id: EntityId | None = Field(
        default=None, description="For a certificate suspension or revocation: one the case concerns"
    )

    @model_validator(mode="after")
    def _shape(self) -> CorrectedPenaltyIn:
        if self.kind in WITH_AMOUNT and self.amount is None:
            raise ValueError(f"a {self.kind} names its amount")
        if self.kind not in WITH_AMOUNT and self.amount is not None:
            raise ValueError(f"a {self.kind} has no amount")
        if self.kind in WITH_CERTIFICATE and self.certificate_id is None:
            raise ValueError(f"a {self.kind} names the certificate")
        if self.kind not in WITH_CERTIFICATE and self.certificate_id is not None:
            raise ValueError(f"a {self.kind} names no certificate")
        return self


class ReviewOpinionIn(InputModel):
    """The reviewer's opinion (审核意见): agree, correct the sanctions, or investigate further."""

    opinion: Literal["agree", "correct", "investigate_further"]
    reason: Text = Field(description="The reasons of the opinion, always required")
    answered_on: PastDate | None = Field(
        default=None, description="Legal date of the opinion (default: today), not before the request"
    )
    penalties: list[CorrectedPenaltyIn] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="For `correct` only, and required there: the sanctions as corrected",
    )
    violation_code: Code | None = Field(default=None, description="For `correct`: a corrected violation")
    violation_regulation: Code | None = Field(default=None, description="For `correct`: its regulation")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "opinion": "agree",
                    "reason": "事实清楚，证据确凿，适用依据正确",
                    "answered_on": "2026-06-24",
                },
                {
                    "opinion": "correct",
                    "reason": "罚款数额偏高，予以纠正",
                    "penalties": [{"kind": "fine", "amount": "50000.00"}],
                },
            ]
        },
    )


class ReviewRead(BaseModel):
    id: int
    version: int
    case_id: int
    number: str
    round: int = Field(description="1 for the first request; a case returned and handed again is round 2…")
    review_kind: str = Field(description="legal (法制审核, major case) or case (案件审核)")
    bureau_id: int
    bureau_path: str
    requested_on: date
    due: date = Field(description="Requested on + 10 working days (data/deadline-rules.csv `review`)")
    overdue: bool = Field(description="Pending past its due day (Asia/Shanghai today)")
    officer_ids: list[int] = Field(description="Officers of the case: never its reviewers")
    categories: list[str]
    state: Literal["pending", "answered", "withdrawn"] = Field(
        description="withdrawn: the case left review unanswered (terminated or transferred)"
    )
    opinion: str | None
    reason: str | None
    correction: dict[str, Any] | None = Field(description="For `correct`: the corrected sanctions")
    answered_on: date | None
    answered_at: datetime | None
    reviewer_officer_id: int | None
    reviewer_name: str | None
    reviewer_post_id: int | None = Field(description="The post (岗位) whose duties list the review step")


# --- filings ---------------------------------------------------------------------


class FilingDocumentIn(InputModel):
    title: ShortText = Field(description="e.g. 行政处罚决定书")
    reference: ShortText | None = Field(default=None, description="Its document number (文号)")
    issued_on: PastDate | None = None


class FilingSubmission(InputModel):
    """What the case's bureau files (报备): a summary of the decision and its documents."""

    summary: LongText = Field(description="Summary of the case and its decision")
    documents: list[FilingDocumentIn] = Field(min_length=1, max_length=50)
    filed_on: PastDate | None = Field(
        default=None, description="Legal date of the filing (default: today), not before the case closed"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "summary": "销售未经认证产品，罚款15万元并撤销认证证书",
                    "documents": [{"title": "行政处罚决定书", "reference": "浙质罚〔2026〕12号"}],
                    "filed_on": "2026-07-28",
                }
            ]
        },
    )


class FilingAnswerIn(InputModel):
    """The receiving legal-affairs body's answer: accepted (准予备案), or returned with reasons."""

    outcome: Literal["accepted", "returned"]
    reason: Text | None = Field(default=None, description="Required when returned")
    answered_on: PastDate | None = None


class FilingRead(BaseModel):
    id: int
    version: int
    case_id: int
    number: str
    bureau_id: int = Field(description="The case's bureau, which files")
    bureau_path: str
    receiving_bureau_id: int = Field(description="The next level up, whose legal-affairs body receives it")
    closed_on: date
    due: date = Field(description="Closed on + the `major_case_filing` rule (15 calendar days)")
    state: Literal["expected", "submitted", "accepted", "returned"]
    late: bool = Field(description="Filed after its due day, or not filed and past it")
    summary: str | None
    documents: list[dict[str, Any]]
    filed_on: date | None
    on_time: bool | None
    submissions: int
    answer: str | None
    answer_reason: str | None
    answered_on: date | None


def money_text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"
