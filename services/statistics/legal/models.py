"""The legal-affairs body's own records: the review queue (法制审核 / 案件审核) fed by enforcement's
review requests, and the major-case filings (重大案件备案) a closed major case owes the
legal-affairs body of the level above."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Column, Index, String, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from services.statistics.base import StatisticsModel, id_column, instant_column, path_prefix_index


class ReviewState(StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    WITHDRAWN = "withdrawn"  # the case left review unanswered (terminated, transferred)


class ReviewOpinion(StrEnum):
    AGREE = "agree"  # 同意
    CORRECT = "correct"  # 纠正：the sanctions corrected
    INVESTIGATE_FURTHER = "investigate_further"  # 补充调查：back to investigation


class FilingState(StrEnum):
    EXPECTED = "expected"  # the case closed; nothing filed yet
    SUBMITTED = "submitted"  # filed, awaiting the receiving body's answer
    ACCEPTED = "accepted"
    RETURNED = "returned"  # returned with reasons: the bureau files again


class Review(StatisticsModel, table=True):
    """One round of review of a case: a case returned for further investigation and handed to
    review again opens a new round; at most one round of a case is pending at a time."""

    __tablename__ = "legal_review"
    __table_args__ = (
        path_prefix_index("legal_review"),
        Index("ix_legal_review_state_id", "state", "id"),
        Index(
            "uq_legal_review_pending_case",
            "case_id",
            unique=True,
            postgresql_where=text("state = 'pending'"),
        ),
        Index("uq_legal_review_case_round", "case_id", "round", unique=True),
    )

    id: int | None = id_column()
    version: int = 1
    event_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False, unique=True))
    case_id: int = Field(sa_type=BigInteger)
    case_version: int = Field(sa_type=BigInteger, description="The case's version when handed to review")
    number: str = Field(max_length=64)
    round: int = Field(default=1, description="1 for the first request of the case, 2 after a return…")
    review_kind: str = Field(max_length=8, description="legal (法制审核) / case (案件审核)")
    bureau_id: int = Field(sa_type=BigInteger, index=True)
    bureau_path: str = Field(max_length=255)
    requested_on: date
    due: date = Field(index=True)
    officer_ids: list[int] = Field(default_factory=list, sa_column=Column(ARRAY(BigInteger), nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String(48)), nullable=False))
    state: str = Field(default=ReviewState.PENDING, max_length=16)
    opinion: str | None = Field(default=None, max_length=24)
    reason: str | None = Field(default=None, max_length=2000)
    correction: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    answered_on: date | None = None
    answered_at: datetime | None = None
    reviewer_account_id: str | None = Field(default=None, max_length=64)
    reviewer_officer_id: int | None = Field(default=None, sa_type=BigInteger)
    reviewer_name: str | None = Field(default=None, max_length=100)
    reviewer_post_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = instant_column()


class Filing(StatisticsModel, table=True):
    """The filing (备案) a closed major case owes the legal-affairs body of the next level up.

    ``bureau_*`` is the case's (filing) bureau, ``receiving_*`` its parent; ``filed_on`` and
    ``on_time`` are those of the submission that stands (the last one)."""

    __tablename__ = "major_case_filing"
    __table_args__ = (
        path_prefix_index("major_case_filing"),
        Index("ix_major_case_filing_state_id", "state", "id"),
    )

    id: int | None = id_column()
    version: int = 1
    case_id: int = Field(sa_type=BigInteger, unique=True)
    number: str = Field(max_length=64)
    bureau_id: int = Field(sa_type=BigInteger, index=True)
    bureau_path: str = Field(max_length=255)
    receiving_bureau_id: int = Field(sa_type=BigInteger, index=True)
    receiving_bureau_path: str = Field(max_length=255)
    closed_on: date
    due: date = Field(index=True)
    state: str = Field(default=FilingState.EXPECTED, max_length=16)
    summary: str | None = Field(default=None, max_length=4000)
    documents: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    filed_on: date | None = None
    on_time: bool | None = None
    submissions: int = 0
    submitted_by: str | None = Field(default=None, max_length=64)
    answer: str | None = Field(default=None, max_length=16)
    answer_reason: str | None = Field(default=None, max_length=2000)
    answered_on: date | None = None
    answered_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()
