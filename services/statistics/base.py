"""The statistics service's own SQLModel base; the column shapes are the platform's (common.columns)."""

from __future__ import annotations

from sqlmodel import SQLModel

from services.common.columns import fk_column, id_column, instant_column, money_column, path_prefix_index
from services.common.db import new_model_registry

__all__ = ["StatisticsModel", "fk_column", "id_column", "instant_column", "money_column", "path_prefix_index"]


class StatisticsModel(SQLModel, registry=new_model_registry()):
    pass
