"""Field types shared by every API: identifiers are positive PostgreSQL bigints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

BIGINT_MAX = 2**63 - 1
BIGINT_MIN = -(2**63)

# In bodies, numbers and flags are strict: JSON true is not id 1, "1" is not a number.
EntityId = Annotated[StrictInt, Field(ge=1, le=BIGINT_MAX)]
Flag = StrictBool
IdPath = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
IdQuery = Annotated[int | None, Query(ge=1, le=BIGINT_MAX)]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class InputModel(BaseModel):
    """Base of every request body: unknown fields are refused (no mass assignment),
    and so is the NUL character, which PostgreSQL text cannot hold."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _has_nul(data):
            raise ValueError("text may not contain the NUL character")
        return data
