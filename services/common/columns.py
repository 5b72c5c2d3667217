"""Column shapes every service's tables share: identity keys, foreign keys, instants, money and
the bureau-path index that serves the scope filter."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Identity, Index, Numeric
from sqlmodel import Field

from services.common.db import utcnow


def id_column() -> Any:
    return Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))


def fk_column(target: str, *, nullable: bool = False, index: bool = True) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(BigInteger, ForeignKey(target), nullable=nullable, index=index),
    )


def instant_column() -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


def money_column(*, nullable: bool = False, zero: bool = False) -> Any:
    """Yuan as ``numeric(14, 2)``: money is never a float. ``zero``: starts at 0.00."""
    if zero:
        return Field(
            default=Decimal("0"), sa_column=Column(Numeric(14, 2), nullable=False, server_default="0")
        )
    return Field(default=None if nullable else ..., sa_column=Column(Numeric(14, 2), nullable=nullable))


def path_prefix_index(table: str) -> Index:
    """An index that serves ``bureau_path LIKE 'prefix%'``, the scope filter of every list."""
    return Index(f"ix_{table}_bureau_path", "bureau_path", postgresql_ops={"bureau_path": "text_pattern_ops"})
