"""The append-only, hash-chained audit log every service keeps.

Each entry's hash covers every column of it (who acted and of which kind, the
request that caused it, what was done to which entity, the data) and the
previous entry's hash, so any edit, deletion or reordering breaks the chain at
that point. Appends take a
transaction-scoped advisory lock, which makes ids, hashes and commits follow
one order. The table itself refuses UPDATE and DELETE (a trigger created by
each service's migration with :func:`append_only_trigger_sql`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    MetaData,
    String,
    Table,
    Text,
    cast,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.context import current_request_id
from services.common.db import NAMING_CONVENTION, utcnow

GENESIS_HASH = "0" * 64
_LOCK_KEY = 0x6175646974  # "audit": one advisory lock key per database


def audit_table(metadata: MetaData) -> Table:
    return Table(
        "audit_entry",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("actor", String(64), nullable=False),
        Column("actor_kind", String(16), nullable=False),
        Column("request_id", String(128)),
        Column("action", String(64), nullable=False),
        Column("entity", String(64), nullable=False),
        Column("entity_id", String(64), nullable=False),
        Column("data", JSONB, nullable=False),
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False, unique=True),
    )


def append_only_trigger_sql(table: str = "audit_entry") -> tuple[list[str], list[str]]:
    """(upgrade, downgrade) statements making the audit table refuse UPDATE and DELETE."""
    upgrade = [
        f"""CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit log is append-only';
        END $$""",
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()""",
    ]
    downgrade = [
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        f"DROP FUNCTION IF EXISTS {table}_append_only()",
    ]
    return upgrade, downgrade


def create_audit_log(op) -> None:
    """Migration step: create the audit table and make it append-only."""
    audit_table(MetaData(naming_convention=NAMING_CONVENTION)).create(op.get_bind())
    for statement in append_only_trigger_sql()[0]:
        op.execute(statement)  # one at a time: asyncpg refuses several in one statement


def drop_audit_log(op) -> None:
    for statement in append_only_trigger_sql()[1]:
        op.execute(statement)
    op.drop_table("audit_entry")


# The columns an entry's hash covers, in order: every one but the id and the hash
# itself. ``data_text`` is PostgreSQL's own text of the stored JSONB, so what is
# hashed is exactly what is kept, numbers included (JSONB normalises them).
HASHED = (
    "prev_hash",
    "at",
    "actor",
    "actor_kind",
    "request_id",
    "action",
    "entity",
    "entity_id",
    "data_text",
)


def _digest(**entry: Any) -> str:
    values = [entry[name] for name in HASHED]
    values[HASHED.index("at")] = entry["at"].isoformat()
    return hashlib.sha256(orjson.dumps(values)).hexdigest()


class AuditLog:
    def __init__(self, table: Table) -> None:
        self.table = table

    async def record(
        self,
        session: AsyncSession,
        principal: Principal | None,
        action: str,
        entity: str,
        entity_id: Any,
        data: dict[str, Any],
    ) -> str:
        """Append one entry in the caller's transaction; returns its hash."""
        await session.exec(text("SELECT pg_advisory_xact_lock(:k)"), params={"k": _LOCK_KEY})
        as_json = orjson.dumps(data, default=str).decode()
        # One round trip: the chain's head (under the lock just taken) and the data as PostgreSQL
        # will store it (jsonb normalises it), which is what the hash covers.
        newest = select(self.table.c.hash).order_by(self.table.c.id.desc()).limit(1).scalar_subquery()
        prev, data_text = (
            await session.exec(select(newest, cast(cast(literal(as_json), Text), JSONB).cast(Text)))
        ).one()
        prev_hash = prev or GENESIS_HASH
        at = utcnow()
        actor = principal.account_id if principal else "system"
        kind = principal.kind.value if principal else "system"
        entry = {
            "prev_hash": prev_hash,
            "at": at,
            "actor": actor,
            "actor_kind": kind,
            "request_id": current_request_id(),
            "action": action,
            "entity": entity,
            "entity_id": str(entity_id),
        }
        digest = _digest(**entry, data_text=data_text)
        await session.exec(
            self.table.insert().values(**entry, data=cast(literal(data_text, Text), JSONB), hash=digest)
        )
        return digest

    async def verify(self, session: AsyncSession, batch: int = 5000) -> ChainReport:
        """Recompute the chain from the first entry; report the first break."""
        t = self.table
        columns = [
            t.c.id,
            t.c.hash,
            *(t.c[name] for name in HASHED if name != "data_text"),
            t.c.data.cast(Text).label("data_text"),
        ]
        expected_prev = GENESIS_HASH
        count = 0
        last_id = 0
        while True:
            query = select(*columns).where(t.c.id > last_id).order_by(t.c.id).limit(batch)
            rows = (await session.exec(query)).all()
            if not rows:
                break
            for row in rows:
                digest = _digest(**{name: getattr(row, name) for name in HASHED})
                if row.prev_hash != expected_prev or digest != row.hash:
                    return ChainReport(valid=False, entries=count, broken_at=row.id)
                expected_prev = row.hash
                count += 1
                last_id = row.id
        return ChainReport(valid=True, entries=count, broken_at=None, head=expected_prev)

    async def count(self, session: AsyncSession) -> int:
        return (await session.exec(select(func.count()).select_from(self.table))).scalar_one()


class ChainReport(BaseModel):
    """The outcome of recomputing an audit chain."""

    valid: bool
    entries: int = Field(description="Entries verified before the first break (all, when valid)")
    broken_at: int | None = Field(default=None, description="Id of the first entry that does not match")
    head: str | None = Field(default=None, description="Hash of the last entry, when valid")
