"""Periodic statistical reports (认证执法统计报表): one row per revision, and its figures.

A report is a bureau's, for a period; its revisions are numbered from 1. A draft holds the
figures of the bureau's aggregates as they were when it was generated; submission freezes it for
good (a database trigger refuses any later write to a submitted revision or its figures). A
correction is a new revision that ``supersedes`` the submitted one, which is kept as it was.
``changed_txid`` is the writing transaction's id, set by a trigger, for the changes-since feed.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Index, LargeBinary, Numeric, UniqueConstraint, text
from sqlmodel import Field

from services.statistics.base import StatisticsModel, id_column, instant_column, path_prefix_index


class ReportState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class StatisticalReport(StatisticsModel, table=True):
    __tablename__ = "statistical_report"
    __table_args__ = (
        path_prefix_index("statistical_report"),
        UniqueConstraint("bureau_id", "period", "revision", name="uq_statistical_report_revision"),
        # One draft at a time per bureau and period.
        Index(
            "uq_statistical_report_draft",
            "bureau_id",
            "period",
            unique=True,
            postgresql_where=text("state = 'draft'"),
        ),
        Index("ix_statistical_report_changed_txid", "changed_txid", "id"),
    )

    id: int | None = id_column()
    bureau_id: int = Field(sa_type=BigInteger)
    bureau_path: str = Field(max_length=255)
    bureau_name: str | None = Field(default=None, max_length=200)
    period: str = Field(max_length=8)
    period_kind: str = Field(max_length=8, description="month / quarter / year")
    revision: int = 1
    state: str = Field(default=ReportState.DRAFT, max_length=16)
    supersedes_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, ForeignKey("statistical_report.id"), nullable=True)
    )
    correction_reason: str | None = Field(default=None, max_length=2000)
    due_on: date
    created_at: datetime = instant_column()
    created_by: str = Field(max_length=64)
    figures_taken_at: datetime = instant_column()
    submitted_at: datetime | None = None
    submitted_on: date | None = Field(default=None, description="Asia/Shanghai date of the submission")
    submitted_by: str | None = Field(default=None, max_length=64)
    # The submitted document as served (JSON) and its ETag, written with the submission: a
    # submitted report is answered as it was, byte for byte, without recomputing its rollup.
    document: bytes | None = Field(default=None, sa_type=LargeBinary)
    etag: str | None = Field(default=None, max_length=40)
    changed_txid: int | None = Field(default=None, sa_type=BigInteger)


class ReportFigure(StatisticsModel, table=True):
    """One figure of a report revision: an aggregate's amount copied when the draft was made."""

    __tablename__ = "report_figure"

    report_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("statistical_report.id"), primary_key=True, autoincrement=False
        )
    )
    measure: str = Field(primary_key=True, max_length=48)
    dimension: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=64, default="")
    amount: Decimal = Field(sa_column=Column(Numeric(18, 4), nullable=False))
