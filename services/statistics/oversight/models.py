"""Oversight alerts. An alert is raised once per ``key`` (what it is about and which deadline or
condition), however many workers or cron ticks find it: the key is unique and a raise is an
insert that does nothing on conflict."""

from __future__ import annotations

from datetime import date, datetime
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
