"""Request and response models of the pilot work (inputs forbid unknown fields)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from services.common.dates import PastDate
from services.common.types import EntityId, InputModel

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=4000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
NOTICE_DATE = date(2008, 8, 18)  # the notice that started the pilot work


def _after_notice(value: date) -> date:
    if value < NOTICE_DATE:
        raise ValueError(f"the pilot work started with the notice of {NOTICE_DATE}; not before it")
    return value


PilotDate = Annotated[PastDate, AfterValidator(_after_notice)]

# --- submissions ------------------------------------------------------------------------


class _Submission(InputModel):
    submitted_on: PilotDate = Field(description="The day it reached the regulator", examples=["2008-09-08"])


class ImplementationPlanSubmission(_Submission):
    """The pilot's implementation plan (试点实施方案)."""

    milestone: Literal["implementation_plan"]
    title: Title = Field(examples=["认证执法监督机制试点实施方案"])
    plan: Text = Field(description="The plan's text or its summary", examples=["一、工作目标……"])


class Summary2008Submission(_Submission):
    """The 2008 pilot work summary (2008年试点工作总结)."""

    milestone: Literal["summary_2008"]
    achievements: Text = Field(description="Results achieved (取得的成效)", examples=["建立执法责任制"])
    problems: Text = Field(description="Problems met (存在的问题)", examples=["基层执法人员不足"])
    typical_experience: Text = Field(description="Typical experience (典型经验)", examples=["双人执法"])


class GrassrootsPilotDoneSubmission(_Submission):
    """The grassroots pilot unit's completion of its pilot work (基层试点完成), reported by the
    provincial unit for the grassroots unit it named (the registry's current designation)."""

    milestone: Literal["grassroots_pilot_done"]
    report: Text = Field(examples=["基层试点单位已完成全过程执法监督试点工作"])


class SelfCheckSubmission(_Submission):
    """The self-check acceptance of the pilot (自查验收)."""

    milestone: Literal["self_check"]
    conclusion: Text = Field(examples=["试点任务全部完成，达到预期目标"])
    findings: Text | None = Field(default=None, description="What the self-check found still open")


SubmissionCreate = Annotated[
    ImplementationPlanSubmission
    | Summary2008Submission
    | GrassrootsPilotDoneSubmission
    | SelfCheckSubmission,
    Field(discriminator="milestone"),
]


class SubmissionRead(BaseModel):
    id: int
    unit_id: int
    milestone: str
    revision: int = Field(description="1 for the first submission; each resubmission adds one")
    content: dict[str, Any] = Field(description="The milestone's fields as submitted")
    submitted_on: date
    due: date | None
    late: bool = Field(description="Submitted after the milestone's due date")
    submitted_by: str
    created_at: datetime


# --- problems ---------------------------------------------------------------------------


class ProblemCreate(InputModel):
    """A problem the pilot unit reports to the policy and legal affairs department (政策法规司)."""

    subject: Title = Field(examples=["执法文书格式不统一"])
    description: Text = Field(examples=["各分支局使用的执法文书格式不一致，请明确统一格式"])
    reported_on: PilotDate = Field(examples=["2008-10-06"])


class ProblemAnswer(InputModel):
    answer: Text = Field(examples=["执法文书格式按总局统一格式执行"])
    answered_on: PastDate = Field(examples=["2008-10-20"])


class ProblemRead(BaseModel):
    id: int
    unit_id: int
    subject: str
    description: str
    reported_on: date
    reported_by: str
    state: Literal["open", "answered"]
    answer: str | None
    answered_on: date | None
    answered_by: str | None
    version: int
    created_at: datetime
    updated_at: datetime


# --- roll-out ---------------------------------------------------------------------------


class RolloutUpdate(InputModel):
    """The roll-out of the pilot's model (试点经验推广) to one bureau of the unit's subtree."""

    state: Literal["in_progress", "done"]
    started_on: PastDate = Field(
        description="Not before 2009-07-01, the roll-out's start", examples=["2009-07-15"]
    )
    done_on: PastDate | None = Field(default=None, description="Required when done, refused otherwise")
    note: Text | None = None

    @model_validator(mode="after")
    def _dates(self) -> RolloutUpdate:
        if self.started_on < date(2009, 7, 1):
            raise ValueError("the roll-out runs from 2009-07-01: started_on is before it")
        if self.state == "done" and self.done_on is None:
            raise ValueError("a done roll-out names its done_on")
        if self.state == "in_progress" and self.done_on is not None:
            raise ValueError("a roll-out in progress has no done_on")
        if self.done_on is not None and self.done_on < self.started_on:
            raise ValueError("done_on is before started_on")
        return self


class RolloutBureau(BaseModel):
    bureau_id: int
    name: str
    level: str
    state: Literal["not_started", "in_progress", "done"]
    started_on: date | None = None
    done_on: date | None = None
    late: bool = Field(default=False, description="Done after 2009-12-31")
    note: str | None = None
    version: int | None = Field(default=None, description="null until the bureau's roll-out is recorded")


class RolloutCounts(BaseModel):
    total: int = Field(description="Bureaus under the unit (the unit itself left out)")
    not_started: int
    in_progress: int
    done: int
    done_late: int = Field(description="Done after 2009-12-31")


class RolloutProgress(BaseModel):
    unit_id: int
    window_from: date
    window_to: date
    counts: RolloutCounts
    bureaus: list[RolloutBureau]


# --- acceptance -------------------------------------------------------------------------


class SampleCreate(InputModel):
    """A draw of pilot units for the formal acceptance spot checks (抽查验收)."""

    size: int = Field(ge=1, le=100, description="Units to draw (all of them if fewer)", examples=[4])
    seed: int | None = Field(
        default=None,
        ge=0,
        le=2**63 - 1,
        description="The draw's seed; a fresh one is drawn and recorded if left out",
    )
    drawn_on: PastDate = Field(examples=["2010-01-15"])


class ResultCreate(InputModel):
    unit_id: EntityId = Field(description="A unit of the sample")
    outcome: Literal["passed", "failed"]
    findings: Text | None = Field(default=None, description="Required when failed")
    checked_on: PastDate = Field(examples=["2010-02-03"])

    @model_validator(mode="after")
    def _findings(self) -> ResultCreate:
        if self.outcome == "failed" and not self.findings:
            raise ValueError("a failed spot check names its findings")
        return self


class ResultRead(BaseModel):
    sample_id: int
    unit_id: int
    outcome: str
    findings: str | None
    checked_on: date
    recorded_by: str
    created_at: datetime


class SampleRead(BaseModel):
    id: int
    seed: int = Field(
        description="The recorded seed: the same seed over the same population draws the same units"
    )
    size: int
    population: list[int] = Field(description="The units whose self-check was submitted, by id")
    sampled: list[int] = Field(description="The units drawn, by id")
    drawn_on: date
    drawn_by: str
    created_at: datetime
    results: list[ResultRead]


# --- the board --------------------------------------------------------------------------


class MilestoneStatus(BaseModel):
    key: str
    applies_to: str
    what: str
    due: date | None
    status: Literal["pending", "overdue", "on_time", "late"] = Field(
        description="pending (not due yet or no due date), overdue (due, not met), on_time or late (met)"
    )
    met_on: date | None = Field(description="The day it was first met (submitted, named, done, checked)")
    revision: int | None = Field(default=None, description="The latest revision of a submitted milestone")
    source: Literal["submission", "registry_designation", "rollout", "acceptance"]


class Grassroots(BaseModel):
    bureau_id: int
    name: str
    level: str
    reported_on: date


class AcceptanceStatus(BaseModel):
    sample_id: int
    outcome: str
    findings: str | None
    checked_on: date


class PilotBoard(BaseModel):
    """A pilot unit's progress (试点进展)."""

    unit_id: int
    name: str
    system: str
    division_code: str | None
    grassroots: Grassroots | None = Field(description="The grassroots pilot unit currently named (registry)")
    milestones: list[MilestoneStatus]
    milestones_met: int
    milestones_overdue: int
    open_problems: int
    answered_problems: int
    rollout: RolloutCounts
    acceptance: AcceptanceStatus | None
