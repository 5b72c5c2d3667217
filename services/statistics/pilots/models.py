"""Tables of the pilot work. A pilot unit is a registry bureau (``unit_id``, with its path for
the scope filter); the milestones are data (milestones.py), not a table."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field

from services.statistics.base import StatisticsModel, id_column, instant_column


class PilotSubmission(StatisticsModel, table=True):
    """One revision of what a pilot unit submitted for a milestone; a resubmission is a new
    revision and the earlier ones are kept."""

    __tablename__ = "pilot_submission"
    __table_args__ = (
        UniqueConstraint("unit_id", "milestone", "revision", name="uq_pilot_submission_revision"),
        Index("ix_pilot_submission_unit_path", "unit_path", postgresql_ops={"unit_path": "text_pattern_ops"}),
    )

    id: int | None = id_column()
    unit_id: int = Field(sa_type=BigInteger, description="The provincial pilot unit (registry bureau)")
    unit_path: str = Field(max_length=255)
    milestone: str = Field(max_length=32)
    revision: int = Field(description="1 for the first submission, +1 for each resubmission")
    content: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    submitted_on: date
    due: date | None = None
    late: bool
    submitted_by: str = Field(max_length=64)
    created_at: datetime = instant_column()


class PilotProblem(StatisticsModel, table=True):
    """A problem a pilot unit reports to the national regulator's policy and legal affairs
    department (政策法规司), and its answer."""

    __tablename__ = "pilot_problem"
    __table_args__ = (
        Index("ix_pilot_problem_unit_path", "unit_path", postgresql_ops={"unit_path": "text_pattern_ops"}),
    )

    id: int | None = id_column()
    unit_id: int = Field(sa_type=BigInteger, index=True)
    unit_path: str = Field(max_length=255)
    subject: str = Field(max_length=200)
    description: str = Field(max_length=4000)
    reported_on: date
    reported_by: str = Field(max_length=64)
    answer: str | None = Field(default=None, max_length=4000)
    answered_on: date | None = None
    answered_by: str | None = Field(default=None, max_length=64)
    version: int = 1
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()


class PilotRollout(StatisticsModel, table=True):
    """The roll-out of the pilot's model to one bureau of the provincial unit's subtree (2009 H2).
    A bureau without a row has not started."""

    __tablename__ = "pilot_rollout"
    __table_args__ = (
        CheckConstraint("state IN ('in_progress', 'done')", name="state"),
        CheckConstraint("state <> 'done' OR done_on IS NOT NULL", name="done_on"),
    )

    bureau_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    unit_id: int = Field(sa_type=BigInteger, index=True)
    bureau_path: str = Field(max_length=255)
    bureau_name: str = Field(max_length=200)
    state: str = Field(max_length=16)
    started_on: date
    done_on: date | None = None
    note: str | None = Field(default=None, max_length=2000)
    recorded_by: str = Field(max_length=64)
    version: int = 1
    updated_at: datetime = instant_column()


class PilotAcceptanceSample(StatisticsModel, table=True):
    """A draw of pilot units for the formal acceptance spot checks (抽查验收): the population
    (units whose self-check was submitted, sorted), the seed and the units drawn."""

    __tablename__ = "pilot_acceptance_sample"

    id: int | None = id_column()
    seed: int = Field(sa_type=BigInteger)
    size: int
    population: list[int] = Field(sa_column=Column(ARRAY(BigInteger), nullable=False))
    sampled: list[int] = Field(sa_column=Column(ARRAY(BigInteger), nullable=False))
    drawn_on: date
    drawn_by: str = Field(max_length=64)
    created_at: datetime = instant_column()


class PilotAcceptanceResult(StatisticsModel, table=True):
    """The spot check of one sampled unit: passed, or failed with its findings."""

    __tablename__ = "pilot_acceptance_result"
    __table_args__ = (CheckConstraint("outcome IN ('passed', 'failed')", name="outcome"),)

    sample_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("pilot_acceptance_sample.id"), primary_key=True)
    )
    unit_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False, index=True))
    unit_path: str = Field(max_length=255)
    outcome: str = Field(max_length=8)
    findings: str | None = Field(default=None, max_length=4000)
    checked_on: date
    recorded_by: str = Field(max_length=64)
    created_at: datetime = instant_column()
