"""Statistical reports and the changes feed: report revisions and figures, aggregate
tombstones, the writing transaction's id on aggregates and reports (for a feed that never
skips a change), and the trigger that freezes a submitted report.

Revision ID: d1c19c25892d
Revises: 9e331674eb48
Create Date: 2026-11-30 01:03:54.503775+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

TRIGGERS = """
CREATE FUNCTION set_changed_txid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_txid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END $$;

-- An aggregate figure changes when it is written, or rewritten with another amount; rewriting
-- the same amount keeps its transaction id, so a rebuild that changes nothing feeds nothing.
CREATE TRIGGER aggregate_changed_txid_insert BEFORE INSERT ON aggregate
    FOR EACH ROW EXECUTE FUNCTION set_changed_txid();

CREATE TRIGGER aggregate_changed_txid_update BEFORE UPDATE ON aggregate
    FOR EACH ROW WHEN (OLD.amount IS DISTINCT FROM NEW.amount
                       OR OLD.bureau_path IS DISTINCT FROM NEW.bureau_path
                       OR OLD.changed_txid IS NULL)
    EXECUTE FUNCTION set_changed_txid();

CREATE TRIGGER statistical_report_changed_txid BEFORE INSERT OR UPDATE ON statistical_report
    FOR EACH ROW EXECUTE FUNCTION set_changed_txid();

-- A deleted figure leaves a tombstone for the feed; writing the key again removes it. Statement
-- triggers over the transition tables: a rebuild touching many figures does it in one statement.
CREATE FUNCTION aggregate_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO aggregate_removal AS r (bureau_id, period, dimension, value, measure, bureau_path,
                                        period_kind, removed_at, changed_txid)
    SELECT o.bureau_id, o.period, o.dimension, o.value, o.measure, o.bureau_path, o.period_kind,
           now(), pg_current_xact_id()::text::bigint
      FROM removed_rows o
    ON CONFLICT (bureau_id, period, dimension, value, measure) DO UPDATE
        SET bureau_path = EXCLUDED.bureau_path, removed_at = EXCLUDED.removed_at,
            changed_txid = EXCLUDED.changed_txid;
    RETURN NULL;
END $$;

CREATE FUNCTION aggregate_restored() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM aggregate_removal r USING added_rows n
     WHERE r.bureau_id = n.bureau_id AND r.period = n.period AND r.dimension = n.dimension
       AND r.value = n.value AND r.measure = n.measure;
    RETURN NULL;
END $$;

CREATE TRIGGER aggregate_removed AFTER DELETE ON aggregate
    REFERENCING OLD TABLE AS removed_rows FOR EACH STATEMENT EXECUTE FUNCTION aggregate_removed();

CREATE TRIGGER aggregate_restored AFTER INSERT ON aggregate
    REFERENCING NEW TABLE AS added_rows FOR EACH STATEMENT EXECUTE FUNCTION aggregate_restored();

-- A submitted report is frozen: neither it nor its figures change again (the API refuses
-- first, with the same problem type; this holds whatever writes).
CREATE FUNCTION statistical_report_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'submitted' THEN
        RAISE EXCEPTION 'statistical report % is submitted and frozen', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ck_statistical_report_frozen';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER statistical_report_frozen BEFORE UPDATE OR DELETE ON statistical_report
    FOR EACH ROW EXECUTE FUNCTION statistical_report_frozen();

CREATE FUNCTION report_figure_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    target bigint := CASE WHEN TG_OP = 'INSERT' THEN NEW.report_id ELSE OLD.report_id END;
BEGIN
    IF EXISTS (SELECT 1 FROM statistical_report WHERE id = target AND state = 'submitted')
       OR (TG_OP = 'UPDATE' AND EXISTS (
           SELECT 1 FROM statistical_report WHERE id = NEW.report_id AND state = 'submitted')) THEN
        RAISE EXCEPTION 'statistical report % is submitted and frozen', target
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ck_statistical_report_frozen';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER report_figure_frozen BEFORE INSERT OR UPDATE OR DELETE ON report_figure
    FOR EACH ROW EXECUTE FUNCTION report_figure_frozen();
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS aggregate_changed_txid_insert ON aggregate;
DROP TRIGGER IF EXISTS aggregate_changed_txid_update ON aggregate;
DROP TRIGGER IF EXISTS aggregate_removed ON aggregate;
DROP TRIGGER IF EXISTS aggregate_restored ON aggregate;
DROP FUNCTION IF EXISTS aggregate_removed();
DROP FUNCTION IF EXISTS aggregate_restored();
DROP TRIGGER IF EXISTS statistical_report_changed_txid ON statistical_report;
DROP TRIGGER IF EXISTS statistical_report_frozen ON statistical_report;
DROP TRIGGER IF EXISTS report_figure_frozen ON report_figure;
DROP FUNCTION IF EXISTS statistical_report_frozen();
DROP FUNCTION IF EXISTS report_figure_frozen();
DROP FUNCTION IF EXISTS set_changed_txid();
"""


revision: str = 'd1c19c25892d'
down_revision: str | None = '9e331674eb48'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('aggregate_removal',
    sa.Column('bureau_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('dimension', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('measure', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
    sa.Column('bureau_path', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('period_kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_txid', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('bureau_id', 'period', 'dimension', 'value', 'measure', name=op.f('pk_aggregate_removal'))
    )
    op.create_index(op.f('ix_aggregate_removal_changed_txid'), 'aggregate_removal', ['changed_txid'], unique=False)
    op.create_table('statistical_report',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('bureau_id', sa.BigInteger(), nullable=False),
    sa.Column('bureau_path', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('bureau_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('period_kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('supersedes_id', sa.BigInteger(), nullable=True),
    sa.Column('correction_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('figures_taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('submitted_on', sa.Date(), nullable=True),
    sa.Column('submitted_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('document', sa.LargeBinary(), nullable=True),
    sa.Column('etag', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('changed_txid', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['supersedes_id'], ['statistical_report.id'], name=op.f('fk_statistical_report_supersedes_id_statistical_report')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statistical_report')),
    sa.UniqueConstraint('bureau_id', 'period', 'revision', name='uq_statistical_report_revision')
    )
    op.create_index('ix_statistical_report_bureau_path', 'statistical_report', ['bureau_path'], unique=False, postgresql_ops={'bureau_path': 'text_pattern_ops'})
    op.create_index('ix_statistical_report_changed_txid', 'statistical_report', ['changed_txid', 'id'], unique=False)
    op.create_index('uq_statistical_report_draft', 'statistical_report', ['bureau_id', 'period'], unique=True, postgresql_where=sa.text("state = 'draft'"))
    op.create_table('report_figure',
    sa.Column('report_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('measure', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
    sa.Column('dimension', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['statistical_report.id'], name=op.f('fk_report_figure_report_id_statistical_report')),
    sa.PrimaryKeyConstraint('report_id', 'measure', 'dimension', 'value', name=op.f('pk_report_figure'))
    )
    op.add_column('aggregate', sa.Column('changed_txid', sa.BigInteger(), nullable=True))
    op.create_index(op.f('ix_aggregate_changed_txid'), 'aggregate', ['changed_txid'], unique=False)
    # ### end Alembic commands ###
    op.execute("UPDATE aggregate SET changed_txid = pg_current_xact_id()::text::bigint")
    for statement in TRIGGERS.strip().split(";\n\n"):
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP_TRIGGERS.strip().splitlines():
        op.execute(statement)
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_index(op.f('ix_aggregate_changed_txid'), table_name='aggregate')
    op.drop_column('aggregate', 'changed_txid')
    op.drop_table('report_figure')
    op.drop_index('uq_statistical_report_draft', table_name='statistical_report', postgresql_where=sa.text("state = 'draft'"))
    op.drop_index('ix_statistical_report_changed_txid', table_name='statistical_report')
    op.drop_index('ix_statistical_report_bureau_path', table_name='statistical_report', postgresql_ops={'bureau_path': 'text_pattern_ops'})
    op.drop_table('statistical_report')
    op.drop_index(op.f('ix_aggregate_removal_changed_txid'), table_name='aggregate_removal')
    op.drop_table('aggregate_removal')
    # ### end Alembic commands ###
