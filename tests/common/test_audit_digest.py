"""What an audit entry's hash covers: every column, and the entry before it.

Each field is edited straight in the database (with the append-only trigger
switched off, on a scratch database of this module's own) and the chain must
break at that entry. A forger who recomputes the edited entry's hash and
relinks the next entry to it must still be caught, at the next entry.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import Text, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.audit import GENESIS_HASH, AuditLog, _digest, append_only_trigger_sql
from services.common.auth import Principal, PrincipalKind
from services.common.context import reset_request_id, set_request_id
from services.common.migrations import downgrade, upgrade
from services.registry.models import AUDIT, AuditEntry
from tests.conftest import scratch_registry
from tools.platform import create_databases, drop_databases

ACTORS = [
    Principal(account_id="officer-1", kind=PrincipalKind.OFFICER, bureau_id=1, bureau_path="1."),
    Principal(account_id="system-1", kind=PrincipalKind.SYSTEM, bureau_id=1, bureau_path="1."),
    Principal(account_id="service-1", kind=PrincipalKind.SERVICE, bureau_id=1, bureau_path="1."),
]
# One UPDATE per column the digest covers; {id} is the entry edited.
FIELD_EDITS = {
    "at": "at = at + interval '1 microsecond'",
    "actor": "actor = 'someone-else'",
    "actor_kind": "actor_kind = CASE actor_kind WHEN 'system' THEN 'officer' ELSE 'system' END",
    "request_id": "request_id = 'another-request-id'",
    "request_id-cleared": "request_id = NULL",
    "action": "action = 'bureau.deleted'",
    "entity": "entity = 'officer'",
    "entity_id": "entity_id = entity_id || '0'",
    "data": "data = data || '{\"n\": 99}'::jsonb",
    "prev_hash": "prev_hash = repeat('b', 64)",
}
# The same edits as new values a forger writes and then re-hashes.
FORGED_VALUES = {
    "at": lambda row: {"at": row.at.replace(microsecond=(row.at.microsecond + 1) % 1_000_000)},
    "actor": lambda row: {"actor": "someone-else"},
    "actor_kind": lambda row: {"actor_kind": "service" if row.actor_kind != "service" else "officer"},
    "request_id": lambda row: {"request_id": "another-request-id"},
    "action": lambda row: {"action": "bureau.deleted"},
    "entity": lambda row: {"entity": "officer"},
    "entity_id": lambda row: {"entity_id": row.entity_id + "0"},
    "data": lambda row: {"data_text": '{"n": 99, "name": "改"}'},
}
EDITED = 2  # index of the entry edited in a chain of five


@pytest.fixture(scope="module")
async def scratch() -> AsyncIterator[httpx.AsyncClient]:
    """A registry app on its own freshly migrated (empty) database."""
    async with scratch_registry("digest") as client:
        yield client


async def tamper(client: httpx.AsyncClient, *statements: str, params: dict | None = None) -> None:
    async with client.app.state.engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only"))
        for statement in statements:
            await conn.execute(text(statement), params or {})
        await conn.execute(text("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only"))


async def check(client: httpx.AsyncClient, batch: int = 5000):
    async with client.app.state.sessionmaker() as session:
        return await AUDIT.verify(session, batch=batch)


async def rows(client: httpx.AsyncClient) -> list:
    query = select(AuditEntry, AuditEntry.c.data.cast(Text).label("data_text")).order_by(AuditEntry.c.id)
    async with client.app.state.sessionmaker() as session:
        return list((await session.exec(query)).all())


@pytest.fixture
async def chain(scratch) -> list[int]:
    """Five entries by an officer, a system and a service; the first without a request id."""
    await tamper(scratch, "TRUNCATE audit_entry RESTART IDENTITY")
    for n in range(5):
        token = set_request_id(None if n == 0 else f"req-{n:04d}-digest")
        try:
            async with scratch.app.state.sessionmaker() as session:
                await AUDIT.record(
                    session, ACTORS[n % 3], "bureau.updated", "bureau", 100 + n, {"name": f"局{n}", "n": n}
                )
                await session.commit()
        finally:
            reset_request_id(token)
    return [row.id for row in await rows(scratch)]


class TestWhatIsRecorded:
    async def test_kind_and_request_id_are_kept(self, scratch, chain):
        stored = await rows(scratch)
        assert [r.actor_kind for r in stored] == ["officer", "system", "service", "officer", "system"]
        assert [r.request_id for r in stored] == [None, *(f"req-{n:04d}-digest" for n in range(1, 5))]

    async def test_each_entry_links_to_the_one_before(self, scratch, chain):
        stored = await rows(scratch)
        assert stored[0].prev_hash == GENESIS_HASH
        for before, entry in itertools.pairwise(stored):
            assert entry.prev_hash == before.hash

    async def test_an_entry_without_a_principal_is_the_systems(self, scratch, chain):
        async with scratch.app.state.sessionmaker() as session:
            digest = await AUDIT.record(session, None, "job.ran", "job", "nightly", {})
            await session.commit()
        last = (await rows(scratch))[-1]
        assert (last.actor, last.actor_kind, last.hash) == ("system", "system", digest)
        report = await check(scratch)
        assert (report.valid, report.entries, report.head) == (True, 6, digest)

    def test_the_digest_encoding_is_fixed(self):
        # Entries already written must keep verifying: SHA-256 of the compact JSON array of
        # the fields in this order, the instant in ISO 8601 with its offset.
        at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        fields = ["acct-1", "officer", "req-0001", "bureau.created", "bureau", "42", '{"name": "局"}']
        expected = [GENESIS_HASH, "2026-01-02T03:04:05.678901+00:00", *fields]
        encoded = json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode()
        digest = _digest(
            prev_hash=GENESIS_HASH,
            at=at,
            actor="acct-1",
            actor_kind="officer",
            request_id="req-0001",
            action="bureau.created",
            entity="bureau",
            entity_id="42",
            data_text='{"name": "局"}',
        )
        assert digest == hashlib.sha256(encoded).hexdigest()
        assert digest == "11988466d2a891d8ad73e3997589bf9e7dcad139222737cecb27aec30df3fb04"

    def test_a_missing_request_id_is_hashed_as_null(self):
        values = dict(
            prev_hash=GENESIS_HASH,
            at=datetime(2026, 1, 2, tzinfo=UTC),
            actor="a",
            actor_kind="system",
            action="x",
            entity="e",
            entity_id="1",
            data_text="{}",
        )
        assert _digest(request_id=None, **values) != _digest(request_id="", **values)
        assert _digest(request_id=None, **values) != _digest(request_id="null", **values)


class TestEditedField:
    async def test_untouched_chain_is_valid(self, scratch, chain):
        report = await check(scratch)
        assert (report.valid, report.entries, report.broken_at) == (True, 5, None)
        assert report.head == (await rows(scratch))[-1].hash

    @pytest.mark.parametrize("field", list(FIELD_EDITS))
    async def test_edit_breaks_the_chain_at_that_entry(self, scratch, chain, field):
        await tamper(scratch, f"UPDATE audit_entry SET {FIELD_EDITS[field]} WHERE id = {chain[EDITED]}")
        report = await check(scratch)
        assert (report.valid, report.entries, report.broken_at, report.head) == (
            False,
            EDITED,
            chain[EDITED],
            None,
        )

    @pytest.mark.parametrize("field", ["actor_kind", "request_id", "entity"])
    async def test_edit_of_the_first_entry_is_found(self, scratch, chain, field):
        await tamper(scratch, f"UPDATE audit_entry SET {FIELD_EDITS[field]} WHERE id = {chain[0]}")
        report = await check(scratch)
        assert (report.valid, report.entries, report.broken_at) == (False, 0, chain[0])


class TestForgedRewrite:
    @pytest.mark.parametrize("field", list(FORGED_VALUES))
    async def test_rehashed_and_relinked_entry_breaks_at_the_next(self, scratch, chain, field):
        stored = await rows(scratch)
        row = stored[EDITED]
        values = {
            "prev_hash": row.prev_hash,
            "at": row.at,
            "actor": row.actor,
            "actor_kind": row.actor_kind,
            "request_id": row.request_id,
            "action": row.action,
            "entity": row.entity,
            "entity_id": row.entity_id,
            "data_text": row.data_text,
        } | FORGED_VALUES[field](row)
        forged = _digest(**values)
        columns = {k: v for k, v in values.items() if k not in ("prev_hash", "data_text")}
        assignments = ", ".join(f"{k} = :{k}" for k in columns)
        await tamper(
            scratch,
            f"UPDATE audit_entry SET {assignments}, data = CAST(:data_text AS jsonb), hash = :forged "
            f"WHERE id = {chain[EDITED]}",
            f"UPDATE audit_entry SET prev_hash = :forged WHERE id = {chain[EDITED + 1]}",
            params={**columns, "data_text": values["data_text"], "forged": forged},
        )
        # The forgery itself is consistent: the edited entry verifies on its own.
        assert (await rows(scratch))[EDITED].hash == forged
        report = await check(scratch)
        assert (report.valid, report.entries, report.broken_at) == (False, EDITED + 1, chain[EDITED + 1])


class TestBatches:
    @pytest.mark.parametrize("batch", [1, 2, 4, 5, 6])
    async def test_any_batch_size_verifies_the_whole_chain(self, scratch, chain, batch):
        report = await check(scratch, batch=batch)
        assert (report.valid, report.entries) == (True, 5)
        assert report.head == (await rows(scratch))[-1].hash

    @pytest.mark.parametrize("batch", [1, 2, 3])
    async def test_a_break_in_a_later_batch_is_found(self, scratch, chain, batch):
        await tamper(scratch, f"UPDATE audit_entry SET actor = 'x' WHERE id = {chain[4]}")
        report = await check(scratch, batch=batch)
        assert (report.valid, report.entries, report.broken_at) == (False, 4, chain[4])

    async def test_a_deleted_entry_is_found_across_a_batch_boundary(self, scratch, chain):
        await tamper(scratch, f"DELETE FROM audit_entry WHERE id = {chain[2]}")
        report = await check(scratch, batch=2)
        assert (report.valid, report.entries, report.broken_at) == (False, 2, chain[3])

    async def test_an_empty_log_is_valid(self, scratch):
        await tamper(scratch, "TRUNCATE audit_entry RESTART IDENTITY")
        report = await check(scratch)
        assert (report.valid, report.entries, report.broken_at) == (True, 0, None)
        assert report.head == GENESIS_HASH


class TestAppendOnlyTable:
    """The trigger a migration creates, on a database migrated by this run's code."""

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_entry SET actor = 'x'",
            "DELETE FROM audit_entry",
            "TRUNCATE audit_entry",
        ],
    )
    async def test_changes_are_refused(self, scratch, chain, statement):
        async with scratch.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
            with pytest.raises(DBAPIError, match="the audit log is append-only"):
                await conn.execute(text(statement))
        assert [row.id for row in await rows(scratch)] == chain

    async def test_the_downgrade_statements_remove_the_trigger(self, scratch, chain):
        upgrade_sql, downgrade_sql = append_only_trigger_sql()
        assert len(upgrade_sql) == len(downgrade_sql) == 2
        async with scratch.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
            transaction = await conn.begin()
            for statement in downgrade_sql:
                await conn.execute(text(statement))
            await conn.execute(text("UPDATE audit_entry SET actor = 'x'"))  # allowed without it
            functions = await conn.execute(
                text("SELECT count(*) FROM pg_proc WHERE proname = 'audit_entry_append_only'")
            )
            assert functions.scalar_one() == 0
            await transaction.rollback()
        assert {row.actor for row in await rows(scratch)} != {"x"}


class TestData:
    async def test_values_json_does_not_know_are_kept_as_text(self, scratch, chain):
        data = {"amount": Decimal("12.50"), "case": uuid.UUID(int=7), "on": date(2026, 3, 1)}
        async with scratch.app.state.sessionmaker() as session:
            await AUDIT.record(session, ACTORS[0], "case.fined", "case", 7, data)
            await session.commit()
        stored = (await rows(scratch))[-1]
        assert stored.data == {"amount": "12.50", "case": str(uuid.UUID(int=7)), "on": "2026-03-01"}
        assert (await check(scratch)).valid is True

    async def test_entity_id_is_kept_as_text(self, scratch, chain):
        assert [row.entity_id for row in await rows(scratch)] == [str(100 + n) for n in range(5)]


class TestTableShape:
    """The table a migration creates: every column required but the request id, one identity key."""

    async def test_columns(self, scratch):
        query = text(
            "SELECT column_name, data_type, character_maximum_length, is_nullable, is_identity "
            "FROM information_schema.columns WHERE table_name = 'audit_entry' ORDER BY ordinal_position"
        )
        async with scratch.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
            columns = [tuple(row) for row in (await conn.execute(query)).all()]
        assert columns == [
            ("id", "bigint", None, "NO", "YES"),
            ("at", "timestamp with time zone", None, "NO", "NO"),
            ("actor", "character varying", 64, "NO", "NO"),
            ("actor_kind", "character varying", 16, "NO", "NO"),
            ("request_id", "character varying", 128, "YES", "NO"),
            ("action", "character varying", 64, "NO", "NO"),
            ("entity", "character varying", 64, "NO", "NO"),
            ("entity_id", "character varying", 64, "NO", "NO"),
            ("data", "jsonb", None, "NO", "NO"),
            ("prev_hash", "character varying", 64, "NO", "NO"),
            ("hash", "character varying", 64, "NO", "NO"),
        ]

    async def test_constraints(self, scratch):
        query = text(
            "SELECT tc.constraint_name, tc.constraint_type, kcu.column_name "
            "FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage kcu "
            "USING (constraint_schema, constraint_name) WHERE tc.table_name = 'audit_entry' "
            "ORDER BY tc.constraint_name"
        )
        async with scratch.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
            constraints = [tuple(row) for row in (await conn.execute(query)).all()]
        assert constraints == [
            ("pk_audit_entry", "PRIMARY KEY", "id"),
            ("uq_audit_entry_hash", "UNIQUE", "hash"),
        ]

    async def test_a_log_object_of_its_own_writes_and_verifies(self, scratch, chain):
        log = AuditLog(AuditEntry)
        async with scratch.app.state.sessionmaker() as session:
            digest = await log.record(session, ACTORS[1], "sync.ran", "system", "zj", {"rows": 3})
            await session.commit()
        async with scratch.app.state.sessionmaker() as session:
            report = await log.verify(session)
            assert await log.count(session) == 6
        assert (report.valid, report.entries, report.head) == (True, 6, digest)


DOWNGRADE_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_{os.getpid()}_scratch_downgrade"


async def test_downgrade_drops_the_table_and_its_trigger_function():
    urls = {"scratch": DOWNGRADE_URL}
    await drop_databases(urls)
    await create_databases(urls)
    try:
        await asyncio.to_thread(upgrade, "registry", DOWNGRADE_URL)
        await asyncio.to_thread(downgrade, "registry", DOWNGRADE_URL)
        engine = create_async_engine(DOWNGRADE_URL)
        try:
            async with engine.connect() as conn:
                tables = await conn.execute(text("SELECT to_regclass('audit_entry')"))
                functions = await conn.execute(
                    text("SELECT count(*) FROM pg_proc WHERE proname = 'audit_entry_append_only'")
                )
                assert (tables.scalar_one(), functions.scalar_one()) == (None, 0)
        finally:
            await engine.dispose()
    finally:
        await drop_databases(urls)
