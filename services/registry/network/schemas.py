"""Request and response models of the registry API (inputs forbid unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from services.common.types import EntityId, Flag, InputModel
from services.registry.network.models import BodyKind, BureauLevel, BureauSystem, DivisionLevel, PilotRole

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=128)]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=64)]
DivisionCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
# Enforcement credential numbers (执法证号) vary by issuer; no whitespace, bounded length.
CredentialNumber = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\S{4,32}$")]
Duties = Annotated[str, StringConstraints(max_length=2000)]

MAX_POST_STEPS = 64
# A step of the administrative penalty procedure (行政处罚程序), by the enforcement service's
# code. The registry does not know the codes: it checks their shape only.
StepCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,47}$")]


def _distinct_steps(steps: list[str]) -> list[str]:
    repeated = sorted({step for step in steps if steps.count(step) > 1})
    if repeated:
        raise ValueError(f"each step is named once; repeated: {', '.join(repeated)}")
    return steps


Steps = Annotated[
    list[StepCode],
    Field(
        max_length=MAX_POST_STEPS,
        description="Codes of the penalty-procedure steps the post's holders may take "
        f"(执法责任制), each once, at most {MAX_POST_STEPS}",
    ),
    AfterValidator(_distinct_steps),
]


class DivisionRead(BaseModel):
    code: str
    name: str
    level: DivisionLevel
    parent_code: str | None
    revision: int


class BureauCreate(InputModel):
    parent_id: EntityId = Field(description="The bureau the new one reports to")
    name: Name
    level: BureauLevel
    division_code: DivisionCode = Field(description="GB/T 2260 code of the bureau's jurisdiction")
    system: BureauSystem | None = Field(
        default=None, description="Required under the national regulator; otherwise inherited"
    )
    pilot: PilotRole = PilotRole.NONE


class BureauUpdate(InputModel):
    name: Name | None = None
    pilot: PilotRole | None = None


class BureauRead(BaseModel):
    id: int
    parent_id: int | None
    path: str = Field(description="Materialized path of ids from the national regulator down")
    name: str
    level: BureauLevel
    system: BureauSystem
    division_code: str | None
    division_name: str | None = None
    pilot: PilotRole
    version: int
    created_at: datetime
    updated_at: datetime


class BodyRead(BaseModel):
    id: int
    bureau_id: int
    kind: BodyKind
    name: str


class PostCreate(InputModel):
    body: BodyKind
    name: Name
    duties: Duties = ""
    steps: Steps = Field(default_factory=list, json_schema_extra={"uniqueItems": True})


def _without_default(schema: dict) -> None:
    # The None default only marks "left out"; the document must not offer null as a value.
    schema.pop("default", None)


def _distinct_without_default(schema: dict) -> None:
    _without_default(schema)
    schema["uniqueItems"] = True


class PostUpdate(InputModel):
    """The post's duties and / or the steps its holders may take; what is left out stays.
    Neither may be set to null (an empty list takes every step away)."""

    duties: Duties = Field(default=None, json_schema_extra=_without_default)
    steps: Steps = Field(default=None, json_schema_extra=_distinct_without_default)


class PostRead(BaseModel):
    id: int
    bureau_id: int
    body: BodyKind
    name: str
    duties: str
    steps: list[str]
    version: int
    created_at: datetime
    updated_at: datetime


class OfficerCreate(InputModel):
    bureau_id: EntityId
    body: BodyKind
    name: PersonName
    post_id: EntityId | None = None
    credential_number: CredentialNumber | None = Field(
        default=None, description="Enforcement credential number (执法证号), unique"
    )


class OfficerUpdate(InputModel):
    """Fields to change; ``post_id`` and ``credential_number`` may be set to null to clear
    them, the others may be left out but not set to null.

    A move to another bureau or body (``bureau_id``, ``body``) clears the post
    unless a post of the new bureau and body is named with it; the officer's
    login follows the move, and loses roles that do not fit it.
    """

    name: PersonName = Field(default=None, json_schema_extra=_without_default)
    bureau_id: EntityId = Field(
        default=None, description="Move to this bureau (in scope)", json_schema_extra=_without_default
    )
    body: BodyKind = Field(
        default=None, description="Move to this body of the bureau", json_schema_extra=_without_default
    )
    post_id: EntityId | None = None
    credential_number: CredentialNumber | None = None
    active: Flag = Field(default=None, json_schema_extra=_without_default)


class OfficerRead(BaseModel):
    id: int
    bureau_id: int
    bureau_path: str
    body: BodyKind
    post_id: int | None
    name: str
    credential_number: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class PostSteps(BaseModel):
    id: int
    name: str
    steps: list[str]


class OfficerStanding(BaseModel):
    """What the enforcement service checks before an officer takes a step of the procedure."""

    officer_id: int
    name: str
    bureau_id: int
    bureau_path: str
    body: BodyKind
    active: bool
    credential_number: str | None
    holds_credential: bool = Field(description="Holds an enforcement credential (执法证)")
    post: PostSteps | None = Field(description="The officer's post (岗位) and the steps it allows")
