"""The registry's own SQLModel base, and the column shapes its domains share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Identity, Index
from sqlmodel import Field, SQLModel

from services.common.db import new_model_registry, utcnow


class RegistryModel(SQLModel, registry=new_model_registry()):
    pass


def id_column() -> Any:
    return Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))


def fk_column(target: str, *, nullable: bool = False, index: bool = True) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(BigInteger, ForeignKey(target), nullable=nullable, index=index),
    )


def instant_column() -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


def link_column(target: str, *, cascade: bool = False, index: bool = False) -> Any:
    """One half of a link table's primary key."""
    key = ForeignKey(target, ondelete="CASCADE") if cascade else ForeignKey(target)
    return Field(sa_column=Column(BigInteger, key, primary_key=True, index=index))


def path_prefix_index(table: str) -> Index:
    """An index that serves ``bureau_path LIKE 'prefix%'``, the scope filter of every list."""
    return Index(f"ix_{table}_bureau_path", "bureau_path", postgresql_ops={"bureau_path": "text_pattern_ops"})
