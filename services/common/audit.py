"""The append-only, hash-chained audit log every service keeps.

Each entry's hash covers every column of it (who acted and of which kind, the
request that caused it, what was done to which entity, the data) and the
previous entry's hash, so any edit, deletion or reordering breaks the chain at
that point. The chain's head (entry count, last id and hash) is checkpointed outside
the database, in Redis (:class:`CheckpointStore`), by each service's worker and
after each successful verification: deleting the newest entries leaves no break
in the chain, but fewer entries than the newest checkpoint, or another hash at
its position, and :meth:`AuditLog.verify` reports it. Appends take a
transaction-scoped advisory lock, which makes ids, hashes and commits follow
one order. The table itself refuses UPDATE and DELETE (a trigger created by
each service's migration with :func:`append_only_trigger_sql`).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
import redis.exceptions
from pydantic import BaseModel, Field, ValidationError
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

log = logging.getLogger("platform.audit")

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

    async def verify(
        self, session: AsyncSession, batch: int = 5000, checkpoints: CheckpointStore | None = None
    ) -> ChainReport:
        """Recompute the chain from the first entry; report the first break.

        With ``checkpoints``, the chain is also compared with the newest checkpoint (read
        before the walk, so every entry it counts is in the chain read): fewer entries is a
        truncation, another id or hash at its position a rewrite. A valid chain is then
        checkpointed itself."""
        check: CheckpointCheck | None = None
        newest: Checkpoint | None = None
        if checkpoints is not None:
            try:
                newest = await checkpoints.newest()
            except CheckpointUnavailable as exc:
                check = CheckpointCheck(status="unavailable", detail=f"No checkpoint could be read: {exc}")
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
                    if check is None and checkpoints is not None:
                        check = CheckpointCheck(
                            status="unchecked",
                            detail="The chain is broken before the checkpoint could be compared.",
                            checkpoint=newest,
                        )
                    return ChainReport(valid=False, entries=count, broken_at=row.id, checkpoint=check)
                expected_prev = row.hash
                count += 1
                last_id = row.id
                if (
                    newest is not None
                    and count == newest.entries
                    and (row.id, row.hash)
                    != (
                        newest.last_id,
                        newest.hash,
                    )
                ):
                    check = CheckpointCheck(
                        status="diverged",
                        detail=(
                            f"Entry {count} of the chain is not the one checkpointed at "
                            f"{newest.at.isoformat()} (id {newest.last_id}): the chain was cut and "
                            "continued, or rewritten."
                        ),
                        checkpoint=newest,
                    )
                    return ChainReport(valid=False, entries=count - 1, broken_at=row.id, checkpoint=check)
        if newest is not None and count < newest.entries:
            check = CheckpointCheck(
                status="truncated",
                detail=(
                    f"The chain holds {count} entries; {newest.entries} were checkpointed at "
                    f"{newest.at.isoformat()}: the newest {newest.entries - count} were deleted."
                ),
                checkpoint=newest,
            )
            return ChainReport(valid=False, entries=count, truncated=True, checkpoint=check)
        if checkpoints is not None and check is None:
            head = Checkpoint(entries=count, last_id=last_id, hash=expected_prev, at=utcnow())
            if newest is None:
                check = CheckpointCheck(status="none", detail="No checkpoint of this chain was found.")
            else:
                check = CheckpointCheck(
                    status="consistent",
                    detail=(
                        f"The chain holds the {newest.entries} entries checkpointed, "
                        f"and {count - newest.entries} since."
                    ),
                    checkpoint=newest,
                )
            try:
                check.checkpointed = await checkpoints.save(head)
            except CheckpointUnavailable as exc:
                log.warning("could not checkpoint the audit chain: %s", exc)
        return ChainReport(valid=True, entries=count, broken_at=None, head=expected_prev, checkpoint=check)

    async def head(self, session: AsyncSession) -> Checkpoint:
        """The chain's head now: entry count, last id and hash (not verified)."""
        t = self.table
        entries, last_id = (await session.exec(select(func.count(), func.max(t.c.id)).select_from(t))).one()
        if not last_id:
            return Checkpoint(entries=0, last_id=0, hash=GENESIS_HASH, at=utcnow())
        digest = (await session.exec(select(t.c.hash).where(t.c.id == last_id))).scalar_one()
        return Checkpoint(entries=entries, last_id=last_id, hash=digest, at=utcnow())

    async def holds(self, session: AsyncSession, checkpoint: Checkpoint) -> bool:
        """Whether the chain still holds ``checkpoint``: as many entries up to its last id, the
        last with its hash (a cheap check; :meth:`verify` walks the whole chain)."""
        if checkpoint.entries == 0:
            return True
        t = self.table
        digest = (await session.exec(select(t.c.hash).where(t.c.id == checkpoint.last_id))).scalar()
        if digest != checkpoint.hash:
            return False
        up_to = select(func.count()).select_from(t).where(t.c.id <= checkpoint.last_id)
        return (await session.exec(up_to)).scalar_one() == checkpoint.entries

    async def checkpoint(self, session: AsyncSession, checkpoints: CheckpointStore) -> dict[str, Any]:
        """Checkpoint the chain's head, unless the chain no longer holds the newest
        checkpoint (then the evidence is kept, and the mismatch logged as an error)."""
        newest = await checkpoints.newest()
        head = await self.head(session)
        if newest is not None and not await self.holds(session, newest):
            log.error(
                "the audit chain no longer holds its newest checkpoint: entries were deleted or rewritten",
                extra={"checkpoint": newest.model_dump(mode="json"), "head": head.model_dump(mode="json")},
            )
            return {"checkpointed": False, "consistent": False, "entries": head.entries}
        saved = await checkpoints.save(head)
        return {"checkpointed": saved, "consistent": True, "entries": head.entries}

    async def count(self, session: AsyncSession) -> int:
        return (await session.exec(select(func.count()).select_from(self.table))).scalar_one()


class Checkpoint(BaseModel):
    """The head of an audit chain at one moment, kept outside the service's database."""

    entries: int = Field(description="Entries in the chain")
    last_id: int = Field(description="Id of the last entry (0 for an empty chain)")
    hash: str = Field(description="Hash of the last entry")
    at: datetime = Field(description="When the head was read")


class CheckpointCheck(BaseModel):
    """How the chain compares with its newest checkpoint."""

    status: Literal["consistent", "truncated", "diverged", "none", "unavailable", "unchecked"] = Field(
        description=(
            "consistent: the chain holds the checkpointed entries; truncated: it holds fewer (the "
            "newest were deleted); diverged: another entry at the checkpointed position; none: no "
            "checkpoint yet; unavailable: no checkpoint could be read (Redis away); unchecked: the "
            "chain broke before the checkpointed position"
        )
    )
    detail: str
    checkpoint: Checkpoint | None = Field(default=None, description="The checkpoint compared with")
    checkpointed: bool = Field(default=False, description="Whether this verification checkpointed the chain")


class ChainReport(BaseModel):
    """The outcome of recomputing an audit chain."""

    valid: bool
    entries: int = Field(description="Entries verified before the first break (all, when valid)")
    broken_at: int | None = Field(default=None, description="Id of the first entry that does not match")
    head: str | None = Field(default=None, description="Hash of the last entry, when valid")
    truncated: bool = Field(
        default=False,
        description="The chain holds fewer entries than its newest checkpoint: the newest were deleted",
    )
    checkpoint: CheckpointCheck | None = Field(
        default=None, description="The comparison with the newest checkpoint kept outside the database"
    )


class CheckpointUnavailable(Exception):
    """Redis did not answer, or held something that is not a checkpoint."""


# Push a checkpoint unless the newest one has more entries (a slower writer's older head);
# one with the same head only refreshes the newest's time. The list is trimmed to its history.
_SAVE = """
local newest = redis.call('LINDEX', KEYS[1], 0)
local entries = tonumber(ARGV[2])
if newest then
  local ok, old = pcall(cjson.decode, newest)
  if ok and type(old) == 'table' and tonumber(old['entries']) then
    if tonumber(old['entries']) > entries then return 0 end
    if tonumber(old['entries']) == entries and old['hash'] == ARGV[3] then
      redis.call('LSET', KEYS[1], 0, ARGV[1])
      return 1
    end
  end
end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[4]) - 1)
return 1
"""
REDIS_TIMEOUT_SECONDS = 2.0


class CheckpointStore:
    """A service's audit checkpoints: a Redis list under ``prefix + service``, newest first."""

    def __init__(self, redis_url: str, key: str, history: int = 288) -> None:
        self.key = key
        self.history = max(1, history)
        self._redis = aioredis.Redis.from_url(
            redis_url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )

    @classmethod
    def for_service(cls, settings: Any, service: str) -> CheckpointStore:
        return cls(
            settings.redis_url,
            f"{settings.audit_checkpoint_key_prefix}{service}",
            settings.audit_checkpoint_history,
        )

    async def newest(self) -> Checkpoint | None:
        try:
            raw = await self._redis.lindex(self.key, 0)
            return None if raw is None else Checkpoint.model_validate_json(raw)
        except (redis.exceptions.RedisError, OSError, ValidationError) as exc:
            raise CheckpointUnavailable(repr(exc)) from exc

    async def history_of(self) -> list[Checkpoint]:
        try:
            return [Checkpoint.model_validate_json(raw) for raw in await self._redis.lrange(self.key, 0, -1)]
        except (redis.exceptions.RedisError, OSError, ValidationError) as exc:
            raise CheckpointUnavailable(repr(exc)) from exc

    async def save(self, checkpoint: Checkpoint) -> bool:
        """Keep ``checkpoint`` as the newest; False when a newer one is there already."""
        try:
            saved = await self._redis.eval(
                _SAVE,
                1,
                self.key,
                checkpoint.model_dump_json(),
                checkpoint.entries,
                checkpoint.hash,
                self.history,
            )
        except (redis.exceptions.RedisError, OSError) as exc:
            raise CheckpointUnavailable(repr(exc)) from exc
        return bool(saved)

    async def clear(self) -> None:
        await self._redis.delete(self.key)

    async def aclose(self) -> None:
        await self._redis.aclose()
