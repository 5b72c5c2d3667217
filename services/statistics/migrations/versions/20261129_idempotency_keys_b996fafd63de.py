"""idempotency keys

Revision ID: b996fafd63de
Revises: e3b2ac7739de
Create Date: 2026-11-29 20:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

from services.common.idempotency import create_idempotency_keys, drop_idempotency_keys

revision: str = "b996fafd63de"
down_revision: str | None = "e3b2ac7739de"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_idempotency_keys(op)


def downgrade() -> None:
    drop_idempotency_keys(op)
