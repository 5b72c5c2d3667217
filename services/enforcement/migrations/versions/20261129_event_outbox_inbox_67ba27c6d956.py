"""event outbox and inbox

Revision ID: 67ba27c6d956
Revises: d9e5cf388f4f
Create Date: 2026-11-29 18:40:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

from services.common.outbox import create_event_tables, drop_event_tables

revision: str = '67ba27c6d956'
down_revision: str | None = 'd9e5cf388f4f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
