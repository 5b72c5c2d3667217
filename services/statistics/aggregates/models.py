"""Aggregates: one number per bureau subtree × period × dimension value × measure.

``bureau_id`` is the subtree's root (a county counts its own cases; a city, its own and its
counties'; the national bureau, all). ``period`` is ``2026-05`` (month), ``2026-Q2`` (quarter) or
``2026`` (year). ``dimension`` is ``all`` (with ``value`` ``""``), ``system``, ``subject_type``,
``violation`` or ``penalty_type``. Measures are named in ``aggregates/measures.py``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Column, Index, Numeric
from sqlmodel import Field

from services.statistics.base import StatisticsModel, instant_column


class Aggregate(StatisticsModel, table=True):
    __tablename__ = "aggregate"
    __table_args__ = (
        Index("ix_aggregate_bureau_path", "bureau_path", postgresql_ops={"bureau_path": "text_pattern_ops"}),
        Index("ix_aggregate_period", "period_kind", "period"),
    )

    bureau_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    period: str = Field(primary_key=True, max_length=8)
    dimension: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=64, default="")
    measure: str = Field(primary_key=True, max_length=48)
    bureau_path: str = Field(max_length=255)
    period_kind: str = Field(max_length=8, description="month / quarter / year")
    amount: Decimal = Field(sa_column=Column(Numeric(18, 4), nullable=False, server_default="0"))
    updated_at: datetime = instant_column()
    # The id of the transaction that last changed the figure, set by a trigger (reports
    # migration): the changes-since feed serves rows older than every running transaction.
    changed_txid: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
