"""Bulk sync: what the written rows did (inserted, updated, unchanged), the scope index of
imports, and row errors read in row order.

Revision ID: 2205730577d2
Revises: b7d41c2a9e35
Create Date: 2026-11-29 18:31:49.435452+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2205730577d2"
down_revision: str | None = "b7d41c2a9e35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("rows_inserted", "rows_updated", "rows_unchanged")


def upgrade() -> None:
    for name in COUNTS:
        op.add_column("import_batch", sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        op.alter_column("import_batch", name, server_default=None)
    op.create_index(
        "ix_import_batch_bureau_path",
        "import_batch",
        ["bureau_path"],
        unique=False,
        postgresql_ops={"bureau_path": "text_pattern_ops"},
    )
    op.create_index(
        "uq_import_row_error_import_id_row_number",
        "import_row_error",
        ["import_id", "row_number"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_import_row_error_import_id_row_number", table_name="import_row_error")
    op.drop_index("ix_import_batch_bureau_path", table_name="import_batch")
    for name in reversed(COUNTS):
        op.drop_column("import_batch", name)
