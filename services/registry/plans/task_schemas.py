"""Request and response models of inspection tasks, their results, officers' declared
conflicts and the published results (inputs forbid unknown fields)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from services.common.dates import PastDate
from services.common.types import EntityId, InputModel
from services.registry.inspections.models import InspectionResult
from services.registry.inspections.schemas import Findings
from services.registry.plans.models import PlanSubject, TaskState

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2000)]


class TaskOfficerRead(BaseModel):
    officer_id: int
    name: str
    drawn_rank: int = Field(description="1 for the first officer drawn for the task, 2 for the second…")


class TaskInspectionRead(BaseModel):
    """The registry's inspection recorded as the task's result."""

    id: int
    inspected_on: date
    result: InspectionResult
    findings: str


class TaskRead(BaseModel):
    id: int
    plan_id: int
    plan_title: str
    year: int
    draw_order: int = Field(description="Position of the subject in the draw's order")
    subject_type: PlanSubject
    subject_id: int
    subject_name: str | None = Field(description="Name (or certificate number) of the subject")
    stratum: str = Field(description="The risk stratum the subject was drawn from")
    bureau_id: int = Field(description="The plan's bureau")
    bureau_path: str
    due_on: date
    state: TaskState
    overdue: bool = Field(description="Open and past its due date (Asia/Shanghai)")
    officers: list[TaskOfficerRead] = Field(description="The officers drawn for the task, by rank")
    inspection: TaskInspectionRead | None = Field(description="Null while the task is open")
    version: int
    created_at: datetime
    updated_at: datetime

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": 501,
                    "plan_id": 12,
                    "plan_title": "2026年度认证有效性双随机抽查",
                    "year": 2026,
                    "draw_order": 3,
                    "subject_type": "certificate",
                    "subject_id": 5120,
                    "subject_name": "2016010901123456",
                    "stratum": "risk_case",
                    "bureau_id": 23,
                    "bureau_path": "1.7.23.",
                    "due_on": "2026-07-01",
                    "state": "done",
                    "overdue": False,
                    "officers": [
                        {"officer_id": 31, "name": "张伟", "drawn_rank": 1},
                        {"officer_id": 35, "name": "李娜", "drawn_rank": 2},
                    ],
                    "inspection": {
                        "id": 88,
                        "inspected_on": "2026-06-12",
                        "result": "compliant",
                        "findings": "现场检查获证产品与型式试验样品一致，标志使用规范",
                    },
                    "version": 2,
                    "created_at": "2026-06-01T02:00:00Z",
                    "updated_at": "2026-06-12T08:30:00Z",
                }
            ]
        }
    }


class TaskResultCreate(InputModel):
    """The result of an inspection task (抽查结果), recorded as the registry's inspection."""

    inspected_on: PastDate = Field(
        description="The day of the inspection (not after today, not before the draw)",
        examples=["2026-06-12"],
    )
    findings: Findings = Field(examples=["现场检查获证产品与型式试验样品一致，标志使用规范"])
    result: InspectionResult = Field(
        description="`non_compliant` refers the inspection to the enforcement body as a lead",
        examples=["compliant"],
    )


class ConflictCreate(InputModel):
    """A conflict of interest an officer declares with a subject (回避申报)."""

    subject_type: PlanSubject = Field(examples=["enterprise"])
    subject_id: EntityId = Field(description="The registry id of the subject", examples=[4410])
    reason: Reason = Field(examples=["配偶在该企业担任质量负责人"])
    declared_on: PastDate = Field(
        description="The day it was declared (not after today)", examples=["2026-03-02"]
    )


class ConflictRead(BaseModel):
    id: int
    officer_id: int
    subject_type: PlanSubject
    subject_id: int
    subject_name: str | None
    reason: str
    declared_on: date
    recorded_by: str = Field(description="Account that recorded the declaration")
    created_at: datetime


class PublicResultRead(BaseModel):
    """One published inspection result (一公开): no officer is named."""

    task_id: int
    plan_id: int
    plan_title: str
    year: int
    bureau_id: int
    bureau_name: str = Field(description="The bureau whose plan drew the subject")
    subject_type: PlanSubject
    subject_id: int
    subject_name: str | None
    inspected_on: date
    result: InspectionResult
    publication_due_on: date | None = Field(
        description=(
            "Latest day of publication: 20 working days after the inspection (the national holiday "
            "calendar); null where the calendar does not cover the year yet"
        )
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "task_id": 501,
                    "plan_id": 12,
                    "plan_title": "2026年度认证有效性双随机抽查",
                    "year": 2026,
                    "bureau_id": 23,
                    "bureau_name": "浙江省市场监督管理局",
                    "subject_type": "certificate",
                    "subject_id": 5120,
                    "subject_name": "2016010901123456",
                    "inspected_on": "2026-06-12",
                    "result": "compliant",
                    "publication_due_on": "2026-07-10",
                }
            ]
        }
    }
