"""The registry's own SQLModel base and its link-table key; the other column shapes are common.columns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey
from sqlmodel import Field, SQLModel

from services.common.columns import fk_column, id_column, instant_column, path_prefix_index
from services.common.db import new_model_registry

__all__ = ["RegistryModel", "fk_column", "id_column", "instant_column", "link_column", "path_prefix_index"]


class RegistryModel(SQLModel, registry=new_model_registry()):
    pass


def link_column(target: str, *, cascade: bool = False, index: bool = False) -> Any:
    """One half of a link table's primary key."""
    key = ForeignKey(target, ondelete="CASCADE") if cascade else ForeignKey(target)
    return Field(sa_column=Column(BigInteger, key, primary_key=True, index=index))
