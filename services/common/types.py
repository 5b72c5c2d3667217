"""Field types shared by every API: identifiers are positive PostgreSQL bigints that a
JSON client can hold exactly (at most 2**53 - 1, RFC 7493 §2.2)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

BIGINT_MAX = 2**63 - 1
BIGINT_MIN = -(2**63)

# Beyond 2**53 JSON parsers (JavaScript, and validators using doubles) round integers.
ID_MAX = 2**53 - 1


def _json_number(value: Any) -> Any:
    # JSON Schema's integer is a number (7 or 7.0), never text or a boolean: no lax "7" or true.
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON number")
    return value


# In bodies, ids and flags take their own JSON type: true is not id 1, "1" not a number.
EntityId = Annotated[int, Field(ge=1, le=ID_MAX), BeforeValidator(_json_number)]
Flag = StrictBool
IdPath = Annotated[int, Path(ge=1, le=ID_MAX)]
IdQuery = Annotated[int | None, Query(ge=1, le=ID_MAX)]


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


class InputModel(BaseModel):
    """Base of every request body: unknown fields are refused (no mass assignment),
    and so is the NUL character, which PostgreSQL text cannot hold."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if has_nul(data):
            raise ValueError("text may not contain the NUL character")
        return data


# Money in yuan: a decimal string with at most two decimals ("12000.00"), never a float.
MONEY_PATTERN = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?$"
POSITIVE_MONEY_PATTERN = r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,11}(\.[0-9]{1,2})?)$"


def _money(pattern: str) -> Any:
    shape = re.compile(pattern)

    def money_text(value: Any) -> Any:
        if isinstance(value, Decimal):
            return value
        if not (isinstance(value, str) and shape.fullmatch(value)):
            raise PydanticCustomError(
                "money",
                'must be yuan written as a decimal string ({pattern}), e.g. "12000.00"',
                {"pattern": pattern},
            )
        return Decimal(value)

    return Annotated[
        Decimal,
        BeforeValidator(money_text),
        WithJsonSchema({"type": "string", "pattern": pattern, "examples": ["12000.00"]}, mode="validation"),
    ]


Money = _money(MONEY_PATTERN)
PositiveMoney = _money(POSITIVE_MONEY_PATTERN)  # a payment: more than nothing
