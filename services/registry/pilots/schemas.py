"""Request and response models of pilot designations (inputs forbid unknown fields)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from services.common.dates import PastDate
from services.common.types import EntityId, InputModel
from services.registry.network.models import BureauLevel

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2000)]


class PilotDesignationCreate(InputModel):
    """A provincial pilot unit names its grassroots pilot unit (基层试点单位)."""

    grassroots_bureau_id: EntityId = Field(
        description=(
            "The bureau named: a branch bureau (分支局) of an entry-exit unit, or a city or county "
            "bureau of a quality-supervision unit, inside the provincial unit's subtree"
        ),
        examples=[1042],
    )
    reported_on: PastDate = Field(
        description="The date the designation was reported to the regulator (not after today)",
        examples=["2008-06-30"],
    )


class PilotDesignationWithdrawal(InputModel):
    """The provincial unit withdraws its grassroots pilot unit, so it may name another."""

    withdrawn_on: PastDate = Field(
        description="Not before the designation was reported, not after today", examples=["2009-03-01"]
    )
    reason: Reason = Field(examples=["该分局机构调整，改由其他分支局承担试点任务"])


class PilotDesignationRead(BaseModel):
    id: int
    provincial_bureau_id: int = Field(description="The provincial pilot unit (省级试点单位) that named it")
    grassroots_bureau_id: int
    grassroots_bureau_name: str
    grassroots_bureau_level: BureauLevel
    reported_on: date
    withdrawn_on: date | None
    withdrawal_reason: str | None
    current: bool = Field(description="True until the designation is withdrawn")
    version: int
    created_at: datetime
    updated_at: datetime

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": 7,
                    "provincial_bureau_id": 8,
                    "grassroots_bureau_id": 1042,
                    "grassroots_bureau_name": "杭州市质量技术监督局",
                    "grassroots_bureau_level": "city",
                    "reported_on": "2008-06-30",
                    "withdrawn_on": None,
                    "withdrawal_reason": None,
                    "current": True,
                    "version": 1,
                    "created_at": "2008-06-30T02:00:00Z",
                    "updated_at": "2008-06-30T02:00:00Z",
                }
            ]
        }
    }
