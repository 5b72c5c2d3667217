"""Request and response models of the catalogue (inputs forbid unknown fields)."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from services.common.types import EntityId, InputModel, Money
from services.enforcement.catalogue.models import BureauLevel
from services.enforcement.catalogue.service import (
    AMOUNT_KINDS,
    FilingCircumstance,
    LegalReviewCategory,
    PartyKind,
    PenaltyItem,
    PenaltyKind,
)

Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")]
# A multiple of the goods' value (article 66: at most twice): a decimal string like money.
MULTIPLE_PATTERN = r"^[0-9]{1,4}(\.[0-9]{1,2})?$"


def _multiple_text(value: object) -> object:
    if isinstance(value, Decimal):
        return value
    if not (isinstance(value, str) and re.fullmatch(MULTIPLE_PATTERN, value)):
        raise PydanticCustomError("multiple", 'must be a decimal string, e.g. "2"')
    return Decimal(value)


Article = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{1,4}(-[0-9]{1,3})?$")]


class ViolationCreate(InputModel):
    """A violation of a regulation text (违法行为); a new text of a regulation is new rows."""

    regulation: Code = Field(description="The regulation text version", examples=["cnca-regulations-2023"])
    article: Article | None = Field(default=None, description="The article (条) of the text", examples=["66"])
    code: Code = Field(
        description="Stable code, unique within the text", examples=["uncertified-ccc-product"]
    )
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=1000)]
    fine_min: Money | None = Field(
        default=None, description="Lowest fine in yuan; null with fine_max: no fine"
    )
    fine_max: Money | None = Field(default=None, description="Highest fine in yuan; null: no upper bound")
    goods_value_below: Money | None = Field(
        default=None,
        description="Goods worth under this → the fine is at most `goods_value_multiple` × value",
    )
    goods_value_multiple: (
        Annotated[
            Decimal,
            BeforeValidator(_multiple_text),
            WithJsonSchema(
                {"type": "string", "pattern": MULTIPLE_PATTERN, "examples": ["2"]}, mode="validation"
            ),
            Field(gt=0),
        ]
        | None
    ) = None
    other_sanctions: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""
    in_force_from: date = Field(
        description="The day the regulation text took effect", examples=["2023-07-20"]
    )

    @model_validator(mode="after")
    def _ordered(self) -> ViolationCreate:
        if self.fine_min is not None and self.fine_max is not None and self.fine_min > self.fine_max:
            raise ValueError("fine_min must not exceed fine_max")
        if (self.goods_value_below is None) != (self.goods_value_multiple is None):
            raise ValueError("goods_value_below and goods_value_multiple go together")
        return self


class ViolationRead(BaseModel):
    id: int
    regulation: str
    article: str | None
    code: str
    title: str
    fine_min: Decimal | None = Field(description="Yuan, a decimal string; null with fine_max: no fine set")
    fine_max: Decimal | None
    goods_value_below: Decimal | None
    goods_value_multiple: Decimal | None
    other_sanctions: str
    in_force_from: date
    created_at: datetime

    model_config = {"from_attributes": True}


class ThresholdRow(InputModel):
    """A province's own row (per bureau level and party kind)."""

    bureau_level: BureauLevel | None = Field(default=None, description="Null: every bureau level")
    party_kind: PartyKind
    amount_at_least: Money = Field(description="A fine or confiscation of at least this triggers (≥)")
    amount_kinds: list[PenaltyKind] = Field(
        default=[PenaltyKind.FINE, PenaltyKind.CONFISCATION],
        max_length=2,
        description="Kinds whose amount (summed per kind) is compared: fine, confiscation",
    )
    penalty_kinds: list[PenaltyKind] = Field(
        default=[], max_length=len(PenaltyKind), description="Kinds that trigger whatever the amount"
    )
    circumstances: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default=[],
        max_length=10,
        description="Filing circumstances or legal-review categories that trigger on their own",
    )

    @model_validator(mode="after")
    def _amount_kinds(self) -> ThresholdRow:
        if not set(self.amount_kinds) <= AMOUNT_KINDS:
            raise ValueError("amount_kinds names only fine and confiscation")
        return self


class ThresholdsUpdate(InputModel):
    rows: list[ThresholdRow] = Field(max_length=8, description="The province's own rows; empty: the defaults")


class ThresholdRead(BaseModel):
    kind: str
    source: str = Field(description="`province` (the province's own row) or `default`")
    province_bureau_id: int | None
    bureau_level: str | None
    party_kind: str
    amount_at_least: Decimal
    amount_kinds: list[str]
    penalty_kinds: list[str]
    circumstances: list[str]


class ThresholdsRead(BaseModel):
    province_bureau_id: int | None = Field(description="Null: the national defaults")
    thresholds: list[ThresholdRead]
    rules: dict[str, str] = Field(
        description="Procedure rules in force today (simple-procedure limits, late-payment surcharge)"
    )


class PenaltyItemIn(InputModel):
    kind: PenaltyKind
    amount: Money | None = Field(default=None, description="Yuan: required for a fine or a confiscation")

    @model_validator(mode="after")
    def _amount(self) -> PenaltyItemIn:
        if (self.kind in AMOUNT_KINDS) != (self.amount is not None):
            raise ValueError("a fine or a confiscation has an amount, other kinds none")
        return self

    def item(self) -> PenaltyItem:
        return PenaltyItem(self.kind, self.amount)


class PenaltyCheckRequest(InputModel):
    """A proposed penalty, checked as a dry run before it is proposed."""

    violation: Code = Field(description="The violation's code", examples=["uncertified-ccc-product"])
    regulation: Code | None = Field(default=None, description="The regulation text; the newest when left out")
    party_kind: PartyKind
    items: list[PenaltyItemIn] = Field(min_length=1, max_length=10)
    province_bureau_id: EntityId | None = Field(
        default=None,
        description=(
            "The province whose thresholds apply; the principal's own when left out (national: defaults)"
        ),
    )
    bureau_level: BureauLevel | None = Field(
        default=None, description="The deciding bureau's level; the principal's bureau's when left out"
    )
    categories: list[LegalReviewCategory] = Field(default=[], max_length=4)
    circumstances: list[FilingCircumstance] = Field(default=[], max_length=4)
    goods_value: Money | None = Field(default=None, description="Value of the goods in yuan (article 66)")


class FlagRead(BaseModel):
    required: bool
    reasons: list[str]
    thresholds: dict[str, Any]


class FineRead(BaseModel):
    amount: Decimal
    fine_min: Decimal
    fine_max: Decimal | None


class PenaltyCheckRead(BaseModel):
    violation: ViolationRead
    fine: FineRead | None = Field(description="The range checked; null when no fine is proposed")
    hearing: FlagRead = Field(description="The party may ask for a hearing (听证)")
    legal_review: FlagRead = Field(
        description="Major, meaning 1: legal review (法制审核), collective decision"
    )
    filing: FlagRead = Field(description="Major, meaning 2: filed (备案) with the next level up")
    simple_procedure: FlagRead = Field(
        description="`required` = the simple procedure (简易程序) may decide it"
    )
