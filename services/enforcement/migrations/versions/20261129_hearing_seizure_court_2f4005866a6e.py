"""the hearing's timetable, a seizure's extension and a preservation's decision, court enforcement

Revision ID: 2f4005866a6e
Revises: 0fbd620f53b4
Create Date: 2026-11-29 23:50:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "2f4005866a6e"
down_revision: str | None = "0fbd620f53b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_hearing",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("host_named_on", sa.Date(), nullable=True),
        sa.Column("files_handed_on", sa.Date(), nullable=True),
        sa.Column("date_fixed_on", sa.Date(), nullable=True),
        sa.Column("hearing_date", sa.Date(), nullable=True),
        sa.Column("public", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("notice_served_on", sa.Date(), nullable=True),
        sa.Column("public_notice_on", sa.Date(), nullable=True),
        sa.Column("held_on", sa.Date(), nullable=True),
        sa.Column("report_on", sa.Date(), nullable=True),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case.id"], name=op.f("fk_case_hearing_case_id_case"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_hearing")),
    )
    op.add_column("case", sa.Column("payment_reminded_on", sa.Date(), nullable=True))
    op.add_column("case", sa.Column("court_enforcement_applied_on", sa.Date(), nullable=True))
    op.add_column("evidence", sa.Column("measure_extended_on", sa.Date(), nullable=True))
    op.add_column(
        "evidence",
        sa.Column("measure_decision", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("evidence", "measure_decision")
    op.drop_column("evidence", "measure_extended_on")
    op.drop_column("case", "court_enforcement_applied_on")
    op.drop_column("case", "payment_reminded_on")
    op.drop_table("case_hearing")
