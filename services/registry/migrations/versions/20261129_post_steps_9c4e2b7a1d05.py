"""Posts carry the steps of the penalty procedure their holders may take (执法责任制),
and a version for If-Match.

Revision ID: 9c4e2b7a1d05
Revises: 2205730577d2
Create Date: 2026-11-29 21:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "9c4e2b7a1d05"
down_revision: str | None = "2205730577d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "post",
        sa.Column(
            "steps",
            postgresql.ARRAY(sa.String(length=48)),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
    )
    op.add_column("post", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.alter_column("post", "version", server_default=None)
    # Existing posts were last changed when they were made.
    op.add_column("post", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE post SET updated_at = created_at")
    op.alter_column("post", "updated_at", nullable=False)


def downgrade() -> None:
    op.drop_column("post", "updated_at")
    op.drop_column("post", "version")
    op.drop_column("post", "steps")
