"""event outbox and inbox

Revision ID: d2820e14b2df
Revises: 8b992fa953a6
Create Date: 2026-11-29 18:40:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

from services.common.outbox import create_event_tables, drop_event_tables

revision: str = 'd2820e14b2df'
down_revision: str | None = '8b992fa953a6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
