"""Response models of the coverage (抽查覆盖率) of inspection plans."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from services.registry.plans.models import PlanState, PlanSubject

_PROBABILITY = "n_h / N_h: every member of the stratum has exactly this chance of being drawn"
_SHARE = "Members inspected (their task done) / pool members"


class StratumCoverage(BaseModel):
    stratum: str = Field(description="The stratum's code (`base` for members no risk rule matched)")
    weight: float = Field(description="The stratum's weight in the allocation (分层权重)")
    pool_size: int = Field(description="N_h: members of the frozen pool in this stratum")
    drawn: int = Field(description="n_h: members drawn (one task each)")
    done: int = Field(description="Tasks of the stratum done (their inspection recorded)")
    inclusion_probability: float | None = Field(description=_PROBABILITY + "; null for an empty stratum")
    inspected_share: float | None = Field(description=_SHARE + "; null for an empty stratum")


class PlanCoverage(BaseModel):
    """The coverage of one drawn plan, by stratum."""

    plan_id: int
    bureau_id: int
    year: int
    subject_type: PlanSubject
    state: PlanState
    pool_size: int = Field(description="N: members of the frozen pool")
    drawn: int = Field(description="n: subjects drawn")
    done: int = Field(description="Tasks done")
    sampling_fraction: float | None = Field(description="n / N")
    inspected_share: float | None = Field(description="Tasks done / N")
    strata: list[StratumCoverage] = Field(description="In the plan's order of strata, `base` last")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "plan_id": 12,
                    "bureau_id": 8,
                    "year": 2026,
                    "subject_type": "certificate",
                    "state": "drawn",
                    "pool_size": 1200,
                    "drawn": 60,
                    "done": 21,
                    "sampling_fraction": 0.05,
                    "inspected_share": 0.0175,
                    "strata": [
                        {
                            "stratum": "recent_suspension",
                            "weight": 3,
                            "pool_size": 40,
                            "drawn": 6,
                            "done": 4,
                            "inclusion_probability": 0.15,
                            "inspected_share": 0.1,
                        },
                        {
                            "stratum": "base",
                            "weight": 1,
                            "pool_size": 1160,
                            "drawn": 54,
                            "done": 17,
                            "inclusion_probability": 0.046552,
                            "inspected_share": 0.014655,
                        },
                    ],
                }
            ]
        }
    }


class YearPlanCoverage(BaseModel):
    id: int
    bureau_id: int
    title: str
    subject_type: PlanSubject
    state: PlanState
    drawn_on: date | None
    pool_size: int
    drawn: int
    done: int


class YearStratumCoverage(BaseModel):
    subject_type: PlanSubject
    stratum: str
    plans: int = Field(description="Plans of the year with members in this stratum")
    pool_memberships: int = Field(description="Σ N_h over those plans (a subject counts once per plan)")
    subjects: int = Field(description="Distinct subjects among those memberships")
    drawn: int = Field(description="Σ n_h over those plans")
    done: int = Field(description="Tasks of the stratum done")
    inclusion_probability: float = Field(
        description="Σ n_h / Σ N_h: the mean over the memberships of each member's chance n_h / N_h"
    )
    inspected_share: float = Field(description="Distinct subjects inspected / distinct subjects")


class YearSubjectCoverage(BaseModel):
    subject_type: PlanSubject
    subjects: int = Field(description="Distinct subjects in the pools of the year's plans")
    drawn_subjects: int = Field(description="Of them, drawn in at least one plan")
    inspected_subjects: int = Field(description="Of them, inspected (a task done) in at least one plan")
    mean_chance_drawn: float = Field(
        description=(
            "Mean over the subjects of the chance of being drawn at least once in the year, "
            "1 − ∏(1 − n_h / N_h) over the plans whose pool held the subject"
        )
    )
    inspected_share: float = Field(description="inspected_subjects / subjects")


class YearCoverage(BaseModel):
    """The coverage of a bureau's drawn plans of a year."""

    year: int
    bureau_id: int
    subtree: bool = Field(description="Whether the plans of the bureaus under it are counted too")
    plans: list[YearPlanCoverage]
    strata: list[YearStratumCoverage] = Field(description="By subject type and stratum code")
    subjects: list[YearSubjectCoverage] = Field(description="By subject type, every stratum together")
