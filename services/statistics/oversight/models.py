"""Oversight alerts. An alert is raised once per ``key`` (what it is about and which deadline or
condition), however many workers or cron ticks find it: the key is unique and a raise is an
insert that does nothing on conflict."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from services.statistics.base import StatisticsModel, id_column, instant_column, path_prefix_index


class Alert(StatisticsModel, table=True):
    __tablename__ = "alert"
    __table_args__ = (path_prefix_index("alert"),)

    id: int | None = id_column()
    key: str = Field(max_length=200, unique=True, description="kind:subject:condition, unique")
    kind: str = Field(max_length=48, index=True)
    severity: str = Field(max_length=16, description="near / past / missing")
    subject_type: str = Field(max_length=32)
    subject_id: int = Field(sa_type=BigInteger)
    bureau_id: int = Field(sa_type=BigInteger, index=True)
    bureau_path: str = Field(max_length=255)
    due: date | None = None
    message: str = Field(max_length=2000)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    raised_at: datetime = instant_column()
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(default=None, max_length=64)
    acknowledgement: str | None = Field(default=None, max_length=2000)
    version: int = 1


class NoticeState(StrEnum):
    SENT = "sent"  # the lower bureau owes its answer
    OBJECTED = "objected"  # the lower bureau objected; the sender owes its reply
    ANSWERED = "answered"
    WITHDRAWN = "withdrawn"  # the sender upheld the objection


class SupervisionNotice(StatisticsModel, table=True):
    """A supervision notice (执法监督通知书) a higher bureau's legal-affairs body sends to a bureau
    of its subtree about a case or a matter. ``bureau_id``/``bureau_path`` are the receiving
    bureau's (so the notice is in scope for it and for every bureau above it, the sender's
    included); the answer and objection windows run from ``received_on``."""

    __tablename__ = "supervision_notice"
    __table_args__ = (path_prefix_index("supervision_notice"),)

    id: int | None = id_column()
    number: str | None = Field(default=None, max_length=64, description="Document number, if any")
    from_bureau_id: int = Field(sa_type=BigInteger, index=True)
    from_bureau_path: str = Field(max_length=255)
    bureau_id: int = Field(sa_type=BigInteger, index=True)
    bureau_path: str = Field(max_length=255)
    subject_type: str = Field(max_length=16, description="case / matter")
    case_id: int | None = Field(default=None, sa_type=BigInteger)
    matter: str = Field(max_length=256)
    requirements: str = Field(max_length=4000)
    sent_on: date
    received_on: date
    answer_due: date
    objection_due: date
    state: str = Field(max_length=16, index=True)
    sent_by: str = Field(max_length=64)
    answer: str | None = Field(default=None, max_length=4000)
    answered_on: date | None = None
    answered_by: str | None = Field(default=None, max_length=64)
    answered_late: bool | None = None
    objection: str | None = Field(default=None, max_length=4000)
    objected_on: date | None = None
    objected_by: str | None = Field(default=None, max_length=64)
    reply_due: date | None = Field(default=None, description="The sender replies to an objection by this day")
    objection_reply: str | None = Field(default=None, max_length=4000)
    reply_outcome: str | None = Field(default=None, max_length=16, description="upheld / dismissed")
    replied_on: date | None = None
    replied_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()
    version: int = 1
