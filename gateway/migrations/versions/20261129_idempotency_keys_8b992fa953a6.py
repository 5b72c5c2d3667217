"""idempotency keys

Revision ID: 8b992fa953a6
Revises: 10db027fd2f4
Create Date: 2026-11-29 20:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

from services.common.idempotency import create_idempotency_keys, drop_idempotency_keys

revision: str = "8b992fa953a6"
down_revision: str | None = "10db027fd2f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_idempotency_keys(op)


def downgrade() -> None:
    drop_idempotency_keys(op)
