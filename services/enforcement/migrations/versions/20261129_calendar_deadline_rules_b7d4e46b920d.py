"""working-day calendar and deadline rules, seeded with rule set samr-2022

Revision ID: b7d4e46b920d
Revises: 5c8a1f0e7b32
Create Date: 2026-11-29 22:06:08.473083+00:00
"""

import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "b7d4e46b920d"
down_revision: str | None = "5c8a1f0e7b32"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The deadline table of DOMAIN.md as of the 2022 text of the market regulation
# administrative penalty procedure rules; a later set is added through the API.
RULE_SET = "samr-2022"
RULE_SET_TITLE = "Market regulation administrative penalty procedure rules (2022 text) and related rules"
RULES_FILE = Path(__file__).resolve().parents[2] / "data" / "deadline-rules.csv"


def _rules() -> list[dict]:
    with RULES_FILE.open(encoding="utf-8", newline="") as f:
        return [
            {
                "rule_set": RULE_SET,
                "code": row["rule"],
                "starts_at": row["starts_at"],
                "days": int(row["days"]),
                "day_kind": row["day_kind"],
                "extension_days": int(row["extension_days"]) if row["extension_days"] else None,
                "extension_needs": row["extension_needs"],
                "excluded_periods": row["excluded_periods"],
                "note": row["note"],
            }
            for row in csv.DictReader(f)
        ]


def upgrade() -> None:
    op.create_table(
        "calendar_year",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("loaded_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_year")),
    )
    rule_sets = op.create_table(
        "deadline_rule_set",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadline_rule_set")),
        sa.UniqueConstraint("code", name=op.f("uq_deadline_rule_set_code")),
    )
    op.create_table(
        "calendar_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.CheckConstraint("kind IN ('holiday', 'working')", name=op.f("ck_calendar_day_kind")),
        sa.ForeignKeyConstraint(
            ["year"], ["calendar_year.year"], name=op.f("fk_calendar_day_year_calendar_year"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_day")),
    )
    op.create_index(op.f("ix_calendar_day_year"), "calendar_day", ["year"], unique=False)
    rules = op.create_table(
        "deadline_rule",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("rule_set", sa.String(length=40), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("starts_at", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("day_kind", sa.String(length=16), nullable=False),
        sa.Column("extension_days", sa.Integer(), nullable=True),
        sa.Column("extension_needs", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("excluded_periods", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.CheckConstraint(
            "day_kind IN ('working', 'calendar', 'working_before')", name=op.f("ck_deadline_rule_day_kind")
        ),
        sa.CheckConstraint("days >= 1", name=op.f("ck_deadline_rule_days_positive")),
        sa.CheckConstraint(
            "extension_days IS NULL OR extension_days >= 1", name=op.f("ck_deadline_rule_extension_days_positive")
        ),
        sa.ForeignKeyConstraint(
            ["rule_set"],
            ["deadline_rule_set.code"],
            name=op.f("fk_deadline_rule_rule_set_deadline_rule_set"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadline_rule")),
        sa.UniqueConstraint("rule_set", "code", name="uq_deadline_rule_rule_set_code"),
    )
    op.bulk_insert(
        rule_sets,
        [
            {
                "code": RULE_SET,
                "title": RULE_SET_TITLE,
                "effective_from": None,  # the first set: in force before any later one
                "created_by": "migration",
                "created_at": datetime.now(UTC),
            }
        ],
    )
    op.bulk_insert(rules, _rules())


def downgrade() -> None:
    op.drop_table("deadline_rule")
    op.drop_index(op.f("ix_calendar_day_year"), table_name="calendar_day")
    op.drop_table("calendar_day")
    op.drop_table("deadline_rule_set")
    op.drop_table("calendar_year")
