"""event outbox and inbox

Revision ID: 8a77dddc7e74
Revises: b996fafd63de
Create Date: 2026-11-29 18:40:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

from services.common.outbox import create_event_tables, drop_event_tables

revision: str = '8a77dddc7e74'
down_revision: str | None = 'b996fafd63de'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
