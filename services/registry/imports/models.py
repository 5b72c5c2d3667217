"""Tables of bulk sync: one row per uploaded file, one per rejected row."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from services.registry.base import (
    RegistryModel,
    fk_column,
    id_column,
    instant_column,
    path_prefix_index,
)


class ImportKind(StrEnum):
    ENTERPRISES = "enterprises"
    PRODUCTS = "products"
    CERTIFICATES = "certificates"


class ImportFormat(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"


class ImportStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ImportBatch(RegistryModel, table=True):
    """One uploaded file (批量同步): what it held, how many rows landed and how many were refused."""

    __tablename__ = "import_batch"
    __table_args__ = (path_prefix_index("import_batch"),)

    id: int | None = id_column()
    kind: ImportKind = Field(sa_type=String(16))
    format: ImportFormat = Field(sa_type=String(8))
    status: ImportStatus = Field(default=ImportStatus.RUNNING, sa_type=String(16))
    rows_total: int = 0
    rows_written: int = 0
    rows_failed: int = 0
    # rows_written split by what they did: new, changed, or already as sent (not rewritten).
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    digest: str | None = Field(default=None, max_length=64)  # sha256 of the rows written
    bureau_id: int = fk_column("bureau.id")
    bureau_path: str = Field(max_length=512)
    account: str = Field(max_length=64)
    started_at: datetime = instant_column()
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ImportRowError(RegistryModel, table=True):
    """A row of an upload that was refused, with its errors."""

    __tablename__ = "import_row_error"
    # Read in row order, page by page (keyset on the row number).
    __table_args__ = (
        Index("uq_import_row_error_import_id_row_number", "import_id", "row_number", unique=True),
    )

    id: int | None = id_column()
    import_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("import_batch.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    row_number: int
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONB)
