"""What the changes-since feed needs beside the aggregates and reports themselves: a tombstone
per aggregate figure that was deleted, so a mirror hears of the removal too.

A trigger (reports migration) writes the tombstone when an ``aggregate`` row is deleted and
removes it when a row of the same key is inserted again, so a key is in one of the two tables at
most; ``changed_txid`` is the deleting transaction's id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field

from services.statistics.base import StatisticsModel, instant_column


class AggregateRemoval(StatisticsModel, table=True):
    __tablename__ = "aggregate_removal"

    bureau_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    period: str = Field(primary_key=True, max_length=8)
    dimension: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=64, default="")
    measure: str = Field(primary_key=True, max_length=48)
    bureau_path: str = Field(max_length=255)
    period_kind: str = Field(max_length=8)
    removed_at: datetime = instant_column()
    changed_txid: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
