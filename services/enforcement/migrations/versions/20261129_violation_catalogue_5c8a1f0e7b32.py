"""violation catalogue, thresholds of hearing / legal review / filing, procedure rules

Seeded from services/enforcement/data (see its README.md).

Revision ID: 5c8a1f0e7b32
Revises: 67ba27c6d956
Create Date: 2026-11-29 22:06:09.634418+00:00
"""

import csv
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5c8a1f0e7b32"
down_revision: str | None = "67ba27c6d956"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    penalty_rule = op.create_table(
        "penalty_rule",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("value", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("in_force_from", sa.Date(), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_penalty_rule")),
        sa.UniqueConstraint(
            "key", "in_force_from", name=op.f("uq_penalty_rule_key"), postgresql_nulls_not_distinct=True
        ),
    )
    penalty_threshold = op.create_table(
        "penalty_threshold",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("province_bureau_id", sa.BigInteger(), nullable=True),
        sa.Column("bureau_level", sa.String(length=16), nullable=True),
        sa.Column("party_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("amount_at_least", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("amount_kinds", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("penalty_kinds", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("circumstances", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_at_least >= 0", name=op.f("ck_penalty_threshold_amount_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_penalty_threshold")),
        sa.UniqueConstraint(
            "kind",
            "province_bureau_id",
            "bureau_level",
            "party_kind",
            name=op.f("uq_penalty_threshold_kind"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index(
        op.f("ix_penalty_threshold_province_bureau_id"),
        "penalty_threshold",
        ["province_bureau_id"],
        unique=False,
    )
    violation = op.create_table(
        "violation",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("regulation", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("article", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("fine_min", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("fine_max", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("goods_value_below", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("goods_value_multiple", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("other_sanctions", sa.Text(), server_default="", nullable=False),
        sa.Column("in_force_from", sa.Date(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(goods_value_below IS NULL) = (goods_value_multiple IS NULL)",
            name=op.f("ck_violation_goods_value_rule_whole"),
        ),
        sa.CheckConstraint(
            "fine_min IS NULL OR fine_max IS NULL OR fine_min <= fine_max",
            name=op.f("ck_violation_fine_range_ordered"),
        ),
        sa.CheckConstraint(
            "fine_min IS NULL OR fine_min >= 0", name=op.f("ck_violation_fine_min_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_violation")),
        sa.UniqueConstraint("regulation", "code", name=op.f("uq_violation_regulation")),
    )
    op.create_index(op.f("ix_violation_code"), "violation", ["code"], unique=False)
    seed(violation, penalty_threshold, penalty_rule)


def downgrade() -> None:
    op.drop_index(op.f("ix_violation_code"), table_name="violation")
    op.drop_table("violation")
    op.drop_index(op.f("ix_penalty_threshold_province_bureau_id"), table_name="penalty_threshold")
    op.drop_table("penalty_threshold")
    op.drop_table("penalty_rule")


DATA = Path(__file__).resolve().parents[2] / "data"
SEEDED_BY = "migration:5c8a1f0e7b32"


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _decimal(text: str) -> Decimal | None:
    return Decimal(text) if text.strip() else None


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


def seed(violation: sa.Table, penalty_threshold: sa.Table, penalty_rule: sa.Table) -> None:
    in_force = {r["regulation"]: date.fromisoformat(r["in_force_from"]) for r in _rows("regulations.csv")}
    op.bulk_insert(
        violation,
        [
            {
                "regulation": r["regulation"],
                "article": r["article"] or None,
                "code": r["code"],
                "title": r["violation"],
                "fine_min": _decimal(r["fine_min_yuan"]),
                "fine_max": _decimal(r["fine_max_yuan"]),
                "goods_value_below": _decimal(r["goods_value_below_yuan"]),
                "goods_value_multiple": _decimal(r["goods_value_multiple"]),
                "other_sanctions": r["other_sanctions"],
                "in_force_from": in_force[r["regulation"]],
                "created_by": SEEDED_BY,
                "created_at": sa.func.now(),
            }
            for r in _rows("violations.csv")
        ],
        multiinsert=False,
    )
    op.bulk_insert(
        penalty_threshold,
        [
            {
                "kind": r["kind"],
                "province_bureau_id": None if r["province"] == "default" else int(r["province"]),
                "bureau_level": r["bureau_level"] or None,
                "party_kind": r["party_kind"],
                "amount_at_least": Decimal(r["amount_at_least_yuan"]),
                "amount_kinds": _list(r["amount_kinds"]),
                "penalty_kinds": _list(r["penalty_kinds"]),
                "circumstances": _list(r["circumstances"]),
                "updated_by": SEEDED_BY,
                "updated_at": sa.func.now(),
            }
            for r in _rows("thresholds.csv")
        ],
        multiinsert=False,
    )
    op.bulk_insert(
        penalty_rule,
        [
            {
                "key": r["key"],
                "value": Decimal(r["value"]),
                "in_force_from": date.fromisoformat(r["in_force_from"]) if r["in_force_from"] else None,
                "description": r["description"],
            }
            for r in _rows("penalty-rules.csv")
        ],
    )
