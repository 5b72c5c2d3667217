"""Request and response models of statistical reports (认证执法统计报表) and their pulls."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from services.common.types import EntityId, InputModel
from services.statistics.reports.periods import PERIOD_PATTERN

PeriodKey = Annotated[
    str,
    StringConstraints(pattern=PERIOD_PATTERN),
    Field(description="`YYYY-MM` (month), `YYYY-Qn` (quarter) or `YYYY` (year)", examples=["2026-05"]),
]
Amount = Annotated[
    str, Field(description="A decimal string, trailing zeros dropped", examples=["12", "35000.5"])
]
ReportStatus = Literal["draft", "submitted", "provisional"]


class ReportCreate(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"bureau_id": 8, "period": "2026-Q1"}]})

    bureau_id: EntityId = Field(description="The reporting bureau: the principal's own")
    period: PeriodKey


class ReportCorrection(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "第一季度立案数漏报 2 件"}]})

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] = Field(
        description="Why the submitted figures are corrected (更正原因)"
    )


class ReportSubmission(InputModel):
    """No fields: the report submitted is the one the If-Match names."""


class FigureRead(BaseModel):
    measure: str
    dimension: str = Field(description="`all` (value empty), or the breakdown's dimension")
    value: str
    amount: Amount


class RollupFigure(BaseModel):
    measure: str
    dimension: str
    value: str
    own: Amount = Field(description="This report's figure (the bureau's subtree from the aggregates)")
    children: Amount = Field(description="The sum of the direct subordinate bureaus' submitted reports")


class ChildSubmitted(BaseModel):
    bureau_id: int
    bureau_name: str | None
    report_id: int
    revision: int
    submitted_at: datetime


class ChildMissing(BaseModel):
    bureau_id: int
    bureau_name: str | None


class Rollup(BaseModel):
    """The subordinate bureaus' submitted reports summed beside this report's own figures."""

    as_of: datetime | None = Field(
        description="Submissions counted up to this instant (the report's own submission); null: up to now"
    )
    children_submitted: list[ChildSubmitted]
    children_missing: list[ChildMissing]
    figures: list[RollupFigure]


class ReportRead(BaseModel):
    id: int | SkipJsonSchema[None] = Field(
        default=None, description="The revision's id; absent from provisional figures"
    )
    bureau_id: int
    bureau_path: str
    bureau_name: str | None
    period: str
    period_kind: Literal["month", "quarter", "year"]
    revision: int | None
    state: ReportStatus = Field(
        description=(
            "`draft`, `submitted` (frozen), or `provisional`: the live aggregates, pulled before any "
            "submission"
        )
    )
    supersedes_id: int | None = Field(description="The submitted revision this one corrects")
    correction_reason: str | None
    due_on: date = Field(description="The last day the report may be submitted on time")
    late: bool = Field(description="Submitted after `due_on`, or not submitted and `due_on` has passed")
    created_at: datetime | None
    figures_taken_at: datetime | None = Field(description="When the figures were copied from the aggregates")
    submitted_at: datetime | None
    submitted_by: str | None
    figures: list[FigureRead] = Field(description="Ordered by measure, dimension, value")
    rollup: Rollup | None = Field(description="For a bureau with subordinate bureaus; null otherwise")


class ReportSummary(BaseModel):
    id: int
    bureau_id: int
    bureau_path: str
    bureau_name: str | None
    period: str
    period_kind: str
    revision: int
    state: Literal["draft", "submitted"]
    supersedes_id: int | None
    due_on: date
    created_at: datetime
    submitted_at: datetime | None
