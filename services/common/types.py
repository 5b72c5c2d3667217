"""Field types shared by every API: identifiers are positive PostgreSQL bigints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

BIGINT_MAX = 2**63 - 1

EntityId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
IdPath = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
IdQuery = Annotated[int | None, Query(ge=1, le=BIGINT_MAX)]
