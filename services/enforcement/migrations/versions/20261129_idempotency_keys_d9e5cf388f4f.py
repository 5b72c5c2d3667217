"""idempotency keys

Revision ID: d9e5cf388f4f
Revises: 48cc1d6e4f2e
Create Date: 2026-11-29 20:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

from services.common.idempotency import create_idempotency_keys, drop_idempotency_keys

revision: str = "d9e5cf388f4f"
down_revision: str | None = "48cc1d6e4f2e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_idempotency_keys(op)


def downgrade() -> None:
    drop_idempotency_keys(op)
