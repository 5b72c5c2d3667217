"""event outbox and inbox

Revision ID: 2507642bf86a
Revises: 33921c6d62d1
Create Date: 2026-11-29 18:40:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

from services.common.outbox import create_event_tables, drop_event_tables

revision: str = '2507642bf86a'
down_revision: str | None = '33921c6d62d1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
