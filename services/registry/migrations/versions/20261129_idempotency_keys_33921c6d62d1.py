"""idempotency keys

Revision ID: 33921c6d62d1
Revises: 6f036db85c94
Create Date: 2026-11-29 20:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

from services.common.idempotency import create_idempotency_keys, drop_idempotency_keys

revision: str = "33921c6d62d1"
down_revision: str | None = "6f036db85c94"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_idempotency_keys(op)


def downgrade() -> None:
    drop_idempotency_keys(op)
