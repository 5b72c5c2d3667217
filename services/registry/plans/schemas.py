"""Request and response models of inspection plans."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from services.common.types import EntityId, Flag, InputModel
from services.registry.plans.draw import BASE, POOL_FILTERS, RISK_RULES
from services.registry.plans.models import PlanState, PlanSubject

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class StratumIn(InputModel):
    code: Code = Field(description="The stratum's name, e.g. `high_risk`")
    rule: Code = Field(description="A risk rule of the subject type (see the plan's description)")
    weight: Annotated[float, Field(gt=0, le=100)] = Field(
        description="Drawn this many times as often as `base`"
    )
    years: Annotated[int, Field(ge=1, le=10)] = Field(default=3, description="How far back the rule looks")


class PoolFilter(InputModel):
    scheme: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,16}$")] | None = None
    status: Annotated[str, StringConstraints(pattern=r"^[a-z_]{2,16}$")] | None = None
    division_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{2,6}$")] | None = Field(
        default=None, description="A GB/T 2260 code or its prefix (33: Zhejiang, 3301: Hangzhou)"
    )
    product_category: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")] | None = None


SHARE_TEXT_MAX_LENGTH = 16


def _short_share(value: Any) -> Any:
    # A decimal written as text is bounded before it is parsed (its digits are counted after).
    if isinstance(value, str) and len(value) > SHARE_TEXT_MAX_LENGTH:
        raise PydanticCustomError(
            "string_too_long", "a share has at most {max} characters", {"max": SHARE_TEXT_MAX_LENGTH}
        )
    return value


# A share of the pool, 0 < share <= 1, at most four decimals: a number or a decimal string.
Share = Annotated[
    Decimal,
    BeforeValidator(_short_share),
    Field(gt=0, le=1, max_digits=5, decimal_places=4),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                {"type": "string", "maxLength": SHARE_TEXT_MAX_LENGTH, "examples": ["0.05"]},
            ]
        },
        mode="validation",
    ),
]


class PlanCreate(InputModel):
    bureau_id: EntityId | None = Field(
        default=None, description="The planning bureau (default: the caller's)"
    )
    year: Annotated[int, Field(ge=2000, le=2100)]
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    subject_type: PlanSubject
    pool_filter: PoolFilter = Field(default_factory=PoolFilter)
    draw_count: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    draw_share: Share | None = None
    strata: list[StratumIn] = Field(default_factory=list, max_length=8)
    officers_per_task: Annotated[int, Field(ge=2, le=5)] = 2
    same_division: Flag = False
    due_working_days: Annotated[int, Field(ge=1, le=250)] = 20

    @model_validator(mode="after")
    def _rules(self) -> PlanCreate:
        if (self.draw_count is None) == (self.draw_share is None):
            raise ValueError("name either draw_count or draw_share")
        fields = POOL_FILTERS[self.subject_type]
        extra = [
            name
            for name, value in self.pool_filter.model_dump().items()
            if value is not None and name not in fields
        ]
        if extra:
            raise ValueError(f"a {self.subject_type} pool is not filtered by {', '.join(extra)}")
        codes = [s.code for s in self.strata]
        if len(set(codes)) != len(codes) or BASE in codes:
            raise ValueError(f"stratum codes are unique and not `{BASE}`")
        unknown = [s.rule for s in self.strata if s.rule not in RISK_RULES[self.subject_type]]
        if unknown:
            known = ", ".join(RISK_RULES[self.subject_type])
            raise ValueError(f"no risk rule {', '.join(unknown)} for a {self.subject_type} (known: {known})")
        return self


class TaskOfficerRead(BaseModel):
    officer_id: int
    drawn_rank: int


class PlanRead(BaseModel):
    id: int
    bureau_id: int
    year: int
    title: str
    subject_type: PlanSubject
    pool_filter: dict[str, Any]
    draw_count: int | None
    draw_share: Decimal | None
    strata: list[dict[str, Any]]
    officers_per_task: int
    same_division: bool
    due_working_days: int
    state: PlanState
    seed: str | None = Field(description="Recorded at the draw; with the frozen pool it reproduces it")
    pool_size: int | None
    pool_digest: str | None
    officer_pool_size: int | None
    officer_pool_digest: str | None
    allocation: dict[str, Any]
    drawn_on: date | None
    drawn_by: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class PoolMemberRead(BaseModel):
    position: int
    subject_id: int
    stratum: str
    division_code: str | None


class DrawVerification(BaseModel):
    """The draw re-run from the frozen pools and the recorded seed, compared with what was drawn."""

    matches: bool
    pool_digest_matches: bool
    officer_pool_digest_matches: bool
    subjects_match: bool
    officers_match: bool
    seed: str
    allocation: dict[str, int]
    drawn: int
    differences: list[dict[str, Any]] = Field(default_factory=list)
