"""Tables of the violation catalogue (违法行为目录), the thresholds of the two meanings of
"major" and of hearings, and the procedure rules (simple procedure, late-payment surcharge).

Every number is a row: seeded by the catalogue's migration from ``services/enforcement/data``,
added to (a new regulation text, a province's own thresholds) by administrators.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, Date, Numeric, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field

from services.enforcement.base import EnforcementModel, id_column, instant_column, money_column


class ThresholdKind(StrEnum):
    HEARING = "hearing"  # the party may ask for a hearing (听证)
    LEGAL_REVIEW = "legal_review"  # major meaning 1: legal review (法制审核) and collective decision
    FILING = "filing"  # major meaning 2: filed (备案) with the legal-affairs body one level up


class BureauLevel(StrEnum):
    COUNTY = "county"
    CITY_OR_ABOVE = "city_or_above"


def _text_list() -> ARRAY:
    return ARRAY(String(64))


class Violation(EnforcementModel, table=True):
    """One violation of one regulation text: a new text is new rows, a case names
    (regulation, code)."""

    __table_args__ = (
        UniqueConstraint("regulation", "code"),
        CheckConstraint("fine_min IS NULL OR fine_min >= 0", name="fine_min_not_negative"),
        CheckConstraint(
            "fine_min IS NULL OR fine_max IS NULL OR fine_min <= fine_max", name="fine_range_ordered"
        ),
        CheckConstraint(
            "(goods_value_below IS NULL) = (goods_value_multiple IS NULL)", name="goods_value_rule_whole"
        ),
    )

    id: int | None = id_column()
    regulation: str = Field(max_length=64)
    article: str | None = Field(default=None, max_length=16)
    code: str = Field(max_length=64, index=True)
    title: str = Field(sa_column=Column(Text, nullable=False))
    fine_min: Decimal | None = money_column(nullable=True)
    fine_max: Decimal | None = money_column(nullable=True)
    # Article 66: goods worth under `goods_value_below` → a fine of at most `multiple` × their value.
    goods_value_below: Decimal | None = money_column(nullable=True)
    goods_value_multiple: Decimal | None = Field(default=None, sa_column=Column(Numeric(6, 2), nullable=True))
    other_sanctions: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    in_force_from: date = Field(sa_type=Date)
    created_by: str = Field(max_length=64)
    created_at: datetime = instant_column()


class PenaltyThreshold(EnforcementModel, table=True):
    """When a penalty allows a hearing, needs legal review, or must be filed: per province
    (NULL = the default), bureau level (NULL = every level) and party kind."""

    __tablename__ = "penalty_threshold"
    __table_args__ = (
        UniqueConstraint(
            "kind", "province_bureau_id", "bureau_level", "party_kind", postgresql_nulls_not_distinct=True
        ),
        CheckConstraint("amount_at_least >= 0", name="amount_not_negative"),
    )

    id: int | None = id_column()
    kind: ThresholdKind = Field(sa_type=String(16))
    province_bureau_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True, index=True)
    )
    bureau_level: BureauLevel | None = Field(default=None, sa_type=String(16), nullable=True)
    party_kind: str = Field(max_length=16)
    amount_at_least: Decimal = money_column()
    # Penalty kinds whose amounts (summed per kind) are compared with `amount_at_least`.
    amount_kinds: list[str] = Field(sa_column=Column(_text_list(), nullable=False))
    # Penalty kinds that trigger whatever the amount (stop of business, revocation…).
    penalty_kinds: list[str] = Field(sa_column=Column(_text_list(), nullable=False))
    # Filing circumstances or legal-review categories that trigger on their own.
    circumstances: list[str] = Field(sa_column=Column(_text_list(), nullable=False))
    updated_by: str = Field(max_length=64)
    updated_at: datetime = instant_column()


class PenaltyRule(EnforcementModel, table=True):
    """A number of the procedure (simple-procedure limits, the late-payment surcharge), by key;
    the row with the latest `in_force_from` on or before a day is in force (NULL: the baseline)."""

    __tablename__ = "penalty_rule"
    __table_args__ = (UniqueConstraint("key", "in_force_from", postgresql_nulls_not_distinct=True),)

    id: int | None = id_column()
    key: str = Field(max_length=64)
    value: Decimal = Field(sa_column=Column(Numeric(14, 4), nullable=False))
    in_force_from: date | None = Field(default=None, sa_type=Date, nullable=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
