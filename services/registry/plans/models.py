"""Tables of "double random, one public" (双随机、一公开) inspection plans: the plan, its frozen
subject and officer pools, the recusals fixed at the draw, the tasks drawn, and the conflicts
officers declare."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from services.registry.base import (
    RegistryModel,
    fk_column,
    id_column,
    instant_column,
    link_column,
    path_prefix_index,
)


class PlanSubject(StrEnum):
    """What a plan draws: certification bodies, auditors, certified enterprises or certificates."""

    BODY = "body"
    AUDITOR = "auditor"
    ENTERPRISE = "enterprise"
    CERTIFICATE = "certificate"


class PlanState(StrEnum):
    DRAFT = "draft"  # the pool is a filter still
    DRAWN = "drawn"  # the pool frozen, subjects and officers drawn, tasks made
    CLOSED = "closed"


class TaskState(StrEnum):
    OPEN = "open"
    DONE = "done"  # its inspection is recorded


class InspectionPlan(RegistryModel, table=True):
    """A bureau's inspection plan for a year (抽查计划)."""

    __tablename__ = "inspection_plan"
    __table_args__ = (path_prefix_index("inspection_plan"),)

    id: int | None = id_column()
    bureau_id: int = fk_column("bureau.id")
    bureau_path: str = Field(max_length=512)
    year: int = Field(sa_column=Column(Integer, nullable=False))
    title: str = Field(max_length=200)
    subject_type: PlanSubject = Field(sa_type=String(16))
    # The pool as a filter over the registry within the bureau's subtree (scheme, product
    # category, division, status); frozen into plan_pool_member at the draw.
    pool_filter: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    draw_count: int | None = Field(default=None, sa_column=Column(Integer))
    draw_share: float | None = Field(default=None, sa_column=Column(Numeric(5, 4)))
    # Strata by risk, as data: [{"code", "rule", "weight"}], first matching rule wins, "base" else.
    strata: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    officers_per_task: int = Field(default=2, sa_column=Column(Integer, nullable=False, server_default="2"))
    same_division: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="false")
    )
    due_working_days: int = Field(default=20, sa_column=Column(Integer, nullable=False, server_default="20"))
    seed: str | None = Field(default=None, max_length=64)  # drawn at the draw, then recorded
    state: PlanState = Field(default=PlanState.DRAFT, sa_type=String(16))
    pool_size: int | None = Field(default=None, sa_column=Column(Integer))
    pool_digest: str | None = Field(default=None, max_length=64)
    officer_pool_size: int | None = Field(default=None, sa_column=Column(Integer))
    officer_pool_digest: str | None = Field(default=None, max_length=64)
    allocation: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    drawn_on: date | None = Field(default=None, sa_type=Date)
    drawn_by: str | None = Field(default=None, max_length=64)
    created_by: str = Field(max_length=64)
    version: int = 1
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()


class PlanPoolMember(RegistryModel, table=True):
    """A subject of the frozen pool, in its recorded order, with its stratum."""

    __tablename__ = "plan_pool_member"
    __table_args__ = (Index("ix_plan_pool_member_plan_id_stratum", "plan_id", "stratum"),)

    plan_id: int = link_column("inspection_plan.id", cascade=True)
    position: int = Field(sa_column=Column(Integer, primary_key=True))
    subject_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    stratum: str = Field(max_length=32)
    division_code: str | None = Field(default=None, max_length=6)


class PlanOfficer(RegistryModel, table=True):
    """An officer of the frozen officer pool (active, holding a credential, of the subtree)."""

    __tablename__ = "plan_officer"

    plan_id: int = link_column("inspection_plan.id", cascade=True)
    position: int = Field(sa_column=Column(Integer, primary_key=True))
    officer_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    division_code: str | None = Field(default=None, max_length=6)


class PlanRecusal(RegistryModel, table=True):
    """An officer who may not inspect a subject of the plan, fixed at the draw with the reason:
    he inspected it in the bureau's previous plan, or declared a conflict of interest."""

    __tablename__ = "plan_recusal"

    plan_id: int = link_column("inspection_plan.id", cascade=True)
    officer_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    subject_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    reason: str = Field(max_length=32)  # previous_plan | declared_conflict


class InspectionTask(RegistryModel, table=True):
    """A drawn subject to inspect, by its drawn officers, before its due date."""

    __tablename__ = "inspection_task"
    __table_args__ = (
        path_prefix_index("inspection_task"),
        UniqueConstraint("plan_id", "subject_id", name="uq_inspection_task_plan_id_subject_id"),
        Index("ix_inspection_task_due_on", "due_on"),
    )

    id: int | None = id_column()
    plan_id: int = fk_column("inspection_plan.id")
    draw_order: int = Field(sa_column=Column(Integer, nullable=False))
    subject_type: PlanSubject = Field(sa_type=String(16))
    subject_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    stratum: str = Field(max_length=32)
    bureau_id: int = fk_column("bureau.id", index=False)
    bureau_path: str = Field(max_length=512)
    due_on: date = Field(sa_type=Date)
    state: TaskState = Field(default=TaskState.OPEN, sa_type=String(16))
    inspection_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, ForeignKey("inspection.id"), nullable=True)
    )
    version: int = 1
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()


class TaskOfficer(RegistryModel, table=True):
    __tablename__ = "inspection_task_officer"

    task_id: int = link_column("inspection_task.id", cascade=True)
    officer_id: int = Field(sa_column=Column(BigInteger, ForeignKey("officer.id"), primary_key=True))
    drawn_rank: int = Field(sa_column=Column(Integer, nullable=False))


class OfficerConflict(RegistryModel, table=True):
    """A conflict of interest an officer declared with a subject (回避): never drawn for it."""

    __tablename__ = "officer_conflict"
    __table_args__ = (
        UniqueConstraint(
            "officer_id", "subject_type", "subject_id", name="uq_officer_conflict_officer_id_subject_type"
        ),
    )

    id: int | None = id_column()
    officer_id: int = fk_column("officer.id")
    subject_type: PlanSubject = Field(sa_type=String(16))
    subject_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    reason: str = Field(sa_type=Text)
    declared_on: date = Field(sa_type=Date)
    recorded_by: str = Field(max_length=64)
    created_at: datetime = instant_column()
