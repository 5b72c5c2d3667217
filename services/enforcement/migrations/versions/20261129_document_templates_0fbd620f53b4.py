"""document templates of the case documents, seeded from services/enforcement/data/templates

Revision ID: 0fbd620f53b4
Revises: 8c758a5b60ff
Create Date: 2026-11-29 23:30:00+00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0fbd620f53b4"
down_revision: str | None = "8c758a5b60ff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One file a kind: the first line is the title, the rest the body with {placeholder} fields.
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "data" / "templates"
KINDS = ("opening_approval", "prior_notice", "decision")


def _templates() -> list[dict]:
    now = datetime.now(UTC)
    rows = []
    for kind in KINDS:
        title, _, body = (TEMPLATES_DIR / f"{kind}.txt").read_text(encoding="utf-8").partition("\n")
        rows.append(
            {
                "kind": kind,
                "version": 1,
                "title": title.strip(),
                "body": body.strip("\n"),
                "note": "seeded by the migration",
                "created_by": "migration",
                "created_at": now,
            }
        )
    return rows


def upgrade() -> None:
    templates = op.create_table(
        "document_template",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_template")),
        sa.UniqueConstraint("kind", "version", name="uq_document_template_kind_version"),
    )
    op.bulk_insert(templates, _templates())


def downgrade() -> None:
    op.drop_table("document_template")
