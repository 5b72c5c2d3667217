"""Request and response models of inspections (inputs forbid unknown fields)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from services.common.dates import PastDate
from services.common.types import EntityId, InputModel
from services.registry.inspections.models import InspectionResult, InspectionTarget

# The referral event carries the findings: the same bound as its payload (event_schemas).
Findings = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2000)]
MAX_OFFICERS = 20


def _without_default(schema: dict) -> None:
    # The None default only marks "left out"; the document must not offer null as a value.
    schema.pop("default", None)


class InspectionCreate(InputModel):
    """An inspection (监督检查) carried out by the certification supervision body."""

    bureau_id: EntityId | None = Field(
        default=None,
        description="The inspecting bureau, in the principal's scope; the principal's own bureau if left out",
    )
    target_type: InspectionTarget = Field(description="What was inspected", examples=["certificate"])
    target_id: EntityId = Field(description="The registry id of the inspected object", examples=[5120])
    inspected_on: PastDate = Field(
        description="The day of the inspection (not after today)", examples=["2008-09-12"]
    )
    officer_ids: list[EntityId] = Field(
        max_length=MAX_OFFICERS,
        description=(
            "The officers who inspected: at least two, active, of the inspecting bureau or a bureau "
            "under it (执法人员不得少于两人)"
        ),
        examples=[[31, 32]],
    )
    findings: Findings = Field(examples=["抽查发现获证产品与型式试验样品不一致，铭牌参数与证书不符"])
    result: InspectionResult = Field(
        description="`non_compliant` refers the inspection to the enforcement body as a lead",
        examples=["non_compliant"],
    )


class InspectionUpdate(InputModel):
    """A correction of the findings or the result, possible until the inspection is referred."""

    findings: Findings = Field(default=None, json_schema_extra=_without_default)
    result: InspectionResult = Field(default=None, json_schema_extra=_without_default)


class ReferralRead(BaseModel):
    """The referral of a non-compliant inspection to the enforcement body (移送执法机构)."""

    event_id: str = Field(description="Id of the `registry.inspection.referred` event")
    state: Literal["pending", "enqueued", "delivered"] = Field(
        description="`pending` until the relay hands the event on, `delivered` once enforcement took it"
    )


class InspectionRead(BaseModel):
    id: int
    bureau_id: int = Field(description="The inspecting bureau")
    bureau_path: str
    target_type: InspectionTarget
    target_id: int
    target_name: str | None = Field(description="Name (or certificate number) of the inspected object")
    inspected_on: date
    officer_ids: list[int]
    findings: str
    result: InspectionResult
    referral: ReferralRead | None = Field(description="Null for a compliant inspection")
    recorded_by: str = Field(description="Account that recorded the inspection")
    version: int
    created_at: datetime
    updated_at: datetime

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": 88,
                    "bureau_id": 23,
                    "bureau_path": "1.7.23.",
                    "target_type": "certificate",
                    "target_id": 5120,
                    "target_name": "2016010901123456",
                    "inspected_on": "2008-09-12",
                    "officer_ids": [31, 32],
                    "findings": "抽查发现获证产品与型式试验样品不一致，铭牌参数与证书不符",
                    "result": "non_compliant",
                    "referral": {"event_id": "6f1c0d3e-9d1b-4c55-a1c8-7a3e0f2b9e11", "state": "pending"},
                    "recorded_by": "0b6f2a8e-4f0e-4d3a-9d8e-2f1b7c6a5d40",
                    "version": 1,
                    "created_at": "2008-09-12T08:30:00Z",
                    "updated_at": "2008-09-12T08:30:00Z",
                }
            ]
        }
    }


class CoverageKind(BaseModel):
    kind: Literal["body", "auditor", "enterprise", "certificate"] = Field(
        description="Certification bodies (认证机构), auditors (认证人员), certified enterprises "
        "(获证企业) or certificates (认证证书)"
    )
    total: int = Field(description="Records of this kind the subtree's bureaus keep")
    inspected: int = Field(description="Of those, the ones inspected at least once in the period")
    share: float | None = Field(description="inspected / total, six decimals; null when total is 0")


class SupervisionCoverage(BaseModel):
    """Supervision coverage (监管覆盖面) of a bureau subtree over a period."""

    bureau_id: int
    bureau_path: str
    date_from: date = Field(description="First day of the period")
    date_to: date = Field(description="Last day of the period (inclusive)")
    kinds: list[CoverageKind]
