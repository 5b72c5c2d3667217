"""Bulk sync (批量同步) of enterprises, products and certificates from provincial systems.

An upload is read as it arrives and written in batches of a few thousand rows,
each batch in one transaction on one connection held for the upload: rows are
validated in Python while the previous batch is being written, references are
resolved with one query per batch, new rows go in with ``COPY``, rows already
registered are updated only where they differ (so a re-sent file changes
nothing). A batch carries one audit entry (the digest of its rows and their
count) and one event, so neither caps the speed. A row is written whole or not
at all: when the database refuses a batch, its rows are retried one by one
under savepoints and only the refused one is reported.

Unlike the other write routes, an upload commits once per batch, not once per
request: a file of a million rows is not one transaction (the rows already
landed stay when the client goes away, and a re-sent file completes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.context import current_request_id
from services.common.db import utcnow
from services.common.pagination import decode_cursor, make_page
from services.common.problems import NotFound
from services.registry.certification.identifiers import org_code_of
from services.registry.certification.models import CertificateStatus
from services.registry.imports import repository as repo
from services.registry.imports.models import ImportBatch, ImportFormat, ImportKind, ImportStatus
from services.registry.imports.parsing import UploadReader
from services.registry.imports.schemas import (
    ROW_MODELS,
    CertificateRow,
    EnterpriseRow,
    ImportBatchRead,
    ImportRowErrorRead,
    ProductRow,
)
from services.registry.network import repository as network_repo

log = logging.getLogger("registry.imports")

BATCH_WRITTEN = "registry.import.batch_written"
Errors = list[dict[str, str]]
Failure = tuple[int, Errors]

# Constraints a row can still hit at the database (another writer got there first…): the rule.
CONSTRAINT_RULES = {
    "uq_enterprise_credit_code": "credit_code_taken",
    "uq_enterprise_org_code": "org_code_taken",
    "uq_certificate_scheme_number": "certificate_number_taken",
}


def _error(loc: str, message: str, kind: str) -> Errors:
    return [{"loc": loc, "message": message, "type": kind}]


def _validation_errors(exc: ValidationError) -> Errors:
    return [
        {"loc": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def _database_errors(exc: asyncpg.PostgresError) -> Errors:
    constraint = getattr(exc, "constraint_name", None) or ""
    kind = CONSTRAINT_RULES.get(constraint) or type(exc).__name__.removesuffix("Error").lower()
    detail = getattr(exc, "detail", None) or ""
    return _error("", f"The registry refused the row: {exc}. {detail}".strip(), kind)


@dataclass(slots=True)
class Run:
    """One upload: who sends it, where new rows are kept, what existing rows it may change."""

    import_id: int
    kind: ImportKind
    principal: Principal
    bureau_id: int
    bureau_path: str
    account: str

    @property
    def scope(self) -> str:
        return self.principal.bureau_path

    def in_scope(self, path: str) -> bool:
        return self.principal.in_scope(path)

    def kept(self, now: datetime) -> tuple:
        """The trailing columns of a new row: who keeps it, which import wrote it, version, times."""
        return (self.bureau_id, self.bureau_path, self.import_id, 1, now, now)


@dataclass(slots=True)
class Item:
    """A row ready to write: its number, the row, the record it updates (if any), and the ids
    of what it refers to."""

    number: int
    row: Any
    raw: bytes = b""  # as sent: what the digests cover
    existing_id: int | None = None
    refs: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Chunk:
    """Rows of one batch as read: the valid ones, and those already refused."""

    rows: list[tuple[int, Any, bytes]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.failures)


# --- resolving references -------------------------------------------------------------


class EnterpriseIndex:
    """Enterprises found for a batch, looked up as the rules say: a credit code finds its
    record, or an older record under the organisation code inside it; an organisation code
    finds the record keeping it, or one whose credit code holds it. A merged record stands
    for the one it went into."""

    def __init__(self, rows: Iterable[asyncpg.Record]) -> None:
        self.by_credit: dict[str, asyncpg.Record] = {}
        self.by_org: dict[str, asyncpg.Record] = {}
        self.by_embedded: dict[str, asyncpg.Record] = {}
        self.org_only: dict[str, asyncpg.Record] = {}
        for r in rows:
            if r["credit_code"]:
                self.by_credit.setdefault(r["credit_code"], r)
                self.by_embedded.setdefault(org_code_of(r["credit_code"]), r)
            if r["org_code"]:
                self.by_org.setdefault(r["org_code"], r)
                if not r["credit_code"]:
                    self.org_only.setdefault(r["org_code"], r)

    @classmethod
    async def load(
        cls, conn: asyncpg.Connection, codes: Iterable[tuple[str | None, str | None]]
    ) -> EnterpriseIndex:
        credits: set[str] = set()
        orgs: set[str] = set()
        for credit, org in codes:
            if credit:
                credits.add(credit)
                orgs.add(org_code_of(credit))
            if org:
                orgs.add(org)
        return cls(await repo.enterprises_by_codes(conn, sorted(credits), sorted(orgs)))

    def find(self, credit: str | None, org: str | None) -> asyncpg.Record | None:
        if credit:
            return self.by_credit.get(credit) or self.org_only.get(org_code_of(credit))
        if org:
            return self.by_org.get(org) or self.by_embedded.get(org)
        return None


def _holder_loc(row: Any) -> str:
    return "holder_credit_code" if row.holder_credit_code else "holder_org_code"


def _unknown_holder(row: Any) -> Errors:
    code = row.holder_credit_code or row.holder_org_code
    return _error(_holder_loc(row), f"No enterprise {code} in the registry.", "unknown_holder")


def _out_of_scope(what: str) -> Errors:
    return _error(
        "", f"The {what} is kept by a bureau outside yours: it cannot be changed from here.", "out_of_scope"
    )


def _duplicate(what: str) -> Errors:
    return _error("", f"The file holds this {what} more than once; the first is taken.", "duplicate_in_file")


def _first_in_batch(
    items: list[Item], key: Callable[[Item], str], what: str, failures: list[Failure]
) -> list[Item]:
    """Items whose key comes first in their batch; the later ones are refused."""
    first: dict[str, Item] = {}
    for item in items:
        k = key(item)
        if k in first:
            failures.append((item.number, _duplicate(what)))
        else:
            first[k] = item
    return list(first.values())


async def _named_before(
    conn: asyncpg.Connection,
    run: Run,
    found: list[tuple[Item, str, int | None]],
    what: str,
    failures: list[Failure],
) -> set[int]:
    """Numbers of the rows an earlier batch of this file already named, refused as repeats.

    ``found``: the batch's rows whose record is registered, with their key and the import that
    last wrote the record. A record this upload wrote carries its id. One it found already as
    sent (not rewritten), or could not change, does not: those keys are remembered for the rest
    of the upload in a temporary table. A new row needs neither: had an earlier row of the file
    named it, that row would have registered it."""
    repeated = {item.number for item, _, import_id in found if import_id == run.import_id}
    to_claim = {key: item for item, key, import_id in found if import_id != run.import_id}
    if to_claim:
        claimed = await repo.claim_keys(conn, list(to_claim))
        repeated |= {item.number for key, item in to_claim.items() if key not in claimed}
    failures.extend((number, _duplicate(what)) for number in sorted(repeated))
    return repeated


# --- the three kinds of rows ---------------------------------------------------------------


class Writer:
    """What the three kinds share: the table they write and its identity sequence."""

    table: str

    def __init__(self) -> None:
        self._sequence: str | None = None

    async def sequence(self, conn: asyncpg.Connection) -> str:
        if self._sequence is None:
            self._sequence = await repo.id_sequence(conn, self.table)
        return self._sequence

    async def prepare(
        self, conn: asyncpg.Connection, run: Run, rows: list[tuple[int, Any, bytes]], failures: list[Failure]
    ) -> list[Item]:
        """Resolve a batch's references (one query each); refused rows go to ``failures``."""
        raise NotImplementedError

    async def write(
        self, conn: asyncpg.Connection, run: Run, items: list[Item], now: datetime
    ) -> tuple[set[int], set[int]]:
        """Write resolved rows; the numbers of the rows inserted and of those updated."""
        raise NotImplementedError


class EnterpriseWriter(Writer):
    table = "enterprise"

    async def prepare(
        self,
        conn: asyncpg.Connection,
        run: Run,
        rows: list[tuple[int, EnterpriseRow, bytes]],
        failures: list[Failure],
    ) -> list[Item]:
        items = _first_in_batch([Item(n, row, raw) for n, row, raw in rows], self.key, "enterprise", failures)
        divisions = await repo.known_divisions(conn, sorted({i.row.division_code for i in items}))
        index = await EnterpriseIndex.load(conn, ((i.row.credit_code, i.row.org_code) for i in items))
        located = []
        for item in items:
            row = item.row
            if row.division_code not in divisions:
                message = f"No division {row.division_code} in the registry's GB/T 2260 revision."
                failures.append((item.number, _error("division_code", message, "unknown_division")))
                continue
            located.append((item, index.find(row.credit_code, row.org_code)))
        found = [
            (item, self.key(item), record["import_id"]) for item, record in located if record is not None
        ]
        repeated = await _named_before(conn, run, found, "enterprise", failures)
        ready: list[Item] = []
        targets: set[int] = set()
        for item, record in located:
            if item.number in repeated:
                continue
            if record is not None:
                if not run.in_scope(record["bureau_path"]):
                    failures.append((item.number, _out_of_scope("enterprise")))
                    continue
                if record["target_id"] in targets:  # two codes of one enterprise (one record merged)
                    failures.append((item.number, _duplicate("enterprise")))
                    continue
                item.existing_id = record["target_id"]
                targets.add(item.existing_id)
            ready.append(item)
        return ready

    @staticmethod
    def key(item: Item) -> str:
        return "e:" + item.row.identity()

    async def write(
        self, conn: asyncpg.Connection, run: Run, items: list[Item], now: datetime
    ) -> tuple[set[int], set[int]]:
        new = [i for i in items if i.existing_id is None]
        ids = await repo.next_ids(conn, await self.sequence(conn), len(new)) if new else []
        records = [
            (
                id_,
                i.row.credit_code,
                i.row.org_code,
                i.row.name,
                i.row.division_code,
                i.row.address,
                "active",
                *run.kept(now),
            )
            for id_, i in zip(ids, new, strict=True)
        ]
        await repo.copy_in(conn, self.table, repo.ENTERPRISE_COLUMNS, records)
        existing = [i for i in items if i.existing_id is not None]
        changed: set[int] = set()
        if existing:
            records = [
                (
                    i.existing_id,
                    i.row.credit_code,
                    i.row.org_code,
                    i.row.name,
                    i.row.division_code,
                    i.row.address,
                )
                for i in existing
            ]
            changed = await repo.update_enterprises(
                conn, records, scope=run.scope, import_id=run.import_id, now=now
            )
        return {i.number for i in new}, {i.number for i in existing if i.existing_id in changed}


class ProductWriter(Writer):
    table = "product"

    async def prepare(
        self,
        conn: asyncpg.Connection,
        run: Run,
        rows: list[tuple[int, ProductRow, bytes]],
        failures: list[Failure],
    ) -> list[Item]:
        index = await EnterpriseIndex.load(
            conn, ((r.holder_credit_code, r.holder_org_code) for _, r, _ in rows)
        )
        items = []
        for number, row, raw in rows:
            holder = index.find(row.holder_credit_code, row.holder_org_code)
            if holder is None:
                failures.append((number, _unknown_holder(row)))
            else:
                items.append(Item(number, row, raw, refs={"holder_id": holder["target_id"]}))
        items = _first_in_batch(items, self.key, "holder's model", failures)
        existing = await repo.products_by_holder_model(
            conn, [i.refs["holder_id"] for i in items], [i.row.model for i in items]
        )
        located = [(item, existing.get((item.refs["holder_id"], item.row.model))) for item in items]
        found = [
            (item, self.key(item), record["import_id"]) for item, record in located if record is not None
        ]
        repeated = await _named_before(conn, run, found, "holder's model", failures)
        ready = []
        for item, record in located:
            if item.number in repeated:
                continue
            if record is not None:
                if not run.in_scope(record["bureau_path"]):
                    failures.append((item.number, _out_of_scope("product")))
                    continue
                item.existing_id = record["id"]
            ready.append(item)
        return ready

    @staticmethod
    def key(item: Item) -> str:
        return f"p:{item.refs['holder_id']}:{item.row.model}"

    async def write(
        self, conn: asyncpg.Connection, run: Run, items: list[Item], now: datetime
    ) -> tuple[set[int], set[int]]:
        new = [i for i in items if i.existing_id is None]
        ids = await repo.next_ids(conn, await self.sequence(conn), len(new)) if new else []
        records = [
            (
                id_,
                i.refs["holder_id"],
                i.row.name,
                i.row.category_code,
                i.row.model,
                i.row.trademark,
                *run.kept(now),
            )
            for id_, i in zip(ids, new, strict=True)
        ]
        await repo.copy_in(conn, self.table, repo.PRODUCT_COLUMNS, records)
        existing = [i for i in items if i.existing_id is not None]
        changed: set[int] = set()
        if existing:
            records = [(i.existing_id, i.row.name, i.row.category_code, i.row.trademark) for i in existing]
            changed = await repo.update_products(
                conn, records, scope=run.scope, import_id=run.import_id, now=now
            )
        return {i.number for i in new}, {i.number for i in existing if i.existing_id in changed}


class CertificateWriter(Writer):
    table = "certificate"

    def __init__(self) -> None:
        super().__init__()
        # The bodies the upload's rows name: their id and the code they print in CCC numbers, by
        # approval number. A file names a few bodies on row after row; they are looked up once.
        self.bodies: dict[str, tuple[int, str | None]] = {}

    async def prepare(
        self,
        conn: asyncpg.Connection,
        run: Run,
        rows: list[tuple[int, CertificateRow, bytes]],
        failures: list[Failure],
    ) -> list[Item]:
        items = _first_in_batch(
            [Item(n, row, raw) for n, row, raw in rows], self.key, "certificate number", failures
        )
        wanted_bodies = {i.row.body_approval_number for i in items} - self.bodies.keys()
        if wanted_bodies:
            found_bodies = await repo.bodies_by_approval_number(conn, sorted(wanted_bodies))
            self.bodies.update((n, (b["id"], b["ccc_body_code"])) for n, b in found_bodies.items())
        holders = await EnterpriseIndex.load(
            conn, ((i.row.holder_credit_code, i.row.holder_org_code) for i in items)
        )
        body_of = self.bodies
        resolved = []
        for item in items:
            row = item.row
            errors: Errors = []
            body = body_of.get(row.body_approval_number)
            if body is None:
                message = f"No certification body {row.body_approval_number} in the registry."
                errors += _error("body_approval_number", message, "unknown_body")
            elif body[1] and (printed := row.ccc_body_code()) not in (None, body[1]):
                message = (
                    f"The number's body code {printed} is not that of {row.body_approval_number} ({body[1]})."
                )
                errors += _error("number", message, "certificate_number_body")
            holder = holders.find(row.holder_credit_code, row.holder_org_code)
            if holder is None:
                errors += _unknown_holder(row)
            if errors:
                failures.append((item.number, errors))
                continue
            item.refs = {
                "body_id": body[0],
                "holder_id": holder["target_id"],
                "holder_name": holder["name"],
                "division_code": holder["division_code"],
            }
            resolved.append(item)
        wanted = [(i.refs["holder_id"], m) for i in resolved for m in (i.row.product_models or ())]
        products = (
            await repo.products_by_holder_model(conn, [h for h, _ in wanted], [m for _, m in wanted])
            if wanted
            else {}
        )
        # A StrEnum member is its code (``.value`` is a slow descriptor, a million times over).
        schemes = [i.row.scheme for i in resolved]
        existing = await repo.certificates_by_number(conn, schemes, [i.row.number for i in resolved])
        located = [(item, existing.get((item.row.scheme, item.row.number))) for item in resolved]
        found = [
            (item, self.key(item), record["import_id"]) for item, record in located if record is not None
        ]
        repeated = await _named_before(conn, run, found, "certificate number", failures)
        ready = []
        for item, record in located:
            if item.number in repeated:
                continue
            errors = []
            product_ids: list[int] = []
            for position, model in enumerate(item.row.product_models or ()):
                product = products.get((item.refs["holder_id"], model))
                if product is None:
                    errors += _error(
                        f"product_models.{position}",
                        f"The holder has no product of model {model!r}.",
                        "unknown_product",
                    )
                elif product["id"] not in product_ids:
                    product_ids.append(product["id"])
            if record is not None and not run.in_scope(record["bureau_path"]):
                errors += _out_of_scope("certificate")
            if errors:
                failures.append((item.number, errors))
                continue
            item.refs["product_ids"] = product_ids
            item.existing_id = record["id"] if record is not None else None
            ready.append(item)
        return ready

    @staticmethod
    def key(item: Item) -> str:
        return f"c:{item.row.scheme}:{item.row.number}"

    async def write(
        self, conn: asyncpg.Connection, run: Run, items: list[Item], now: datetime
    ) -> tuple[set[int], set[int]]:
        new = [i for i in items if i.existing_id is None]
        if new:
            ids = await repo.next_ids(conn, await self.sequence(conn), len(new))
            valid = CertificateStatus.VALID.value
            reason = f"Registered by bulk sync (import {run.import_id})"
            principal = run.principal
            actor = (principal.kind.value, principal.account_id, principal.bureau_id, current_request_id())
            kept = run.kept(now)
            # Generators: COPY sends each buffer as it fills, so the database is at work on the
            # first rows while the next ones are built.
            certificates = (
                (
                    id_,
                    i.row.number,
                    i.row.scheme,
                    i.refs["body_id"],
                    i.refs["holder_id"],
                    i.refs["holder_name"],
                    i.refs["division_code"],
                    i.row.scope,
                    i.row.issued_on,
                    i.row.expires_on,
                    valid,
                    now,
                    *kept,
                )
                for id_, i in zip(ids, new, strict=True)
            )
            await repo.copy_in(conn, self.table, repo.CERTIFICATE_COLUMNS, certificates)
            history = ((id_, None, valid, reason, *actor, now) for id_ in ids)
            await repo.copy_in(conn, "certificate_status_change", repo.STATUS_CHANGE_COLUMNS, history)
            links = [(id_, p) for id_, i in zip(ids, new, strict=True) for p in i.refs["product_ids"]]
            await repo.copy_in(conn, "certificate_product", repo.LINK_COLUMNS, links)
        existing = [i for i in items if i.existing_id is not None]
        changed: set[int] = set()
        if existing:
            records = [
                (
                    i.existing_id,
                    i.refs["body_id"],
                    i.refs["holder_id"],
                    i.refs["holder_name"],
                    i.refs["division_code"],
                    i.row.scope,
                    i.row.issued_on,
                    i.row.expires_on,
                    i.row.product_models is not None,
                )
                for i in existing
            ]
            links = [(i.existing_id, p) for i in existing for p in i.refs["product_ids"]]
            changed = await repo.update_certificates(
                conn, records, links, scope=run.scope, import_id=run.import_id, now=now
            )
        return {i.number for i in new}, {i.number for i in existing if i.existing_id in changed}


WRITERS: dict[ImportKind, type[Writer]] = {
    ImportKind.ENTERPRISES: EnterpriseWriter,
    ImportKind.PRODUCTS: ProductWriter,
    ImportKind.CERTIFICATES: CertificateWriter,
}


# --- events ---------------------------------------------------------------------------


async def emit_batch_written(session: AsyncSession, run: Run, sequence: int, summary: dict[str, Any]) -> None:
    """One event per written batch (never one per row): ``registry.import.batch_written``.

    Waits for the outbox (services/common/outbox.py, being built on another branch); once it
    is on main this becomes ``await OUTBOX.emit(session, BATCH_WRITTEN, aggregate_type="import_batch",
    aggregate_id=run.import_id, aggregate_version=sequence, bureau_id=run.bureau_id,
    bureau_path=run.bureau_path, payload=summary)`` with its payload model in event_schemas.py.
    """
    return None


# --- one upload -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _transaction(conn: AsyncConnection, first: str = "SELECT 1") -> AsyncIterator[asyncpg.Connection]:
    """A transaction on the upload's connection, and the raw asyncpg connection inside it."""
    async with conn.begin():
        # SQLAlchemy's asyncpg adapter sends BEGIN with the first statement it runs itself:
        # run that one through it, so the raw connection's statements are inside the transaction.
        await conn.exec_driver_sql(first)
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None and raw.is_in_transaction()
        yield raw


async def _chunks(reader: UploadReader, model: type[BaseModel], size: int) -> AsyncIterator[Chunk]:
    """Validated rows, ``size`` rows (valid or not) at a time."""
    chunk = Chunk()
    validate = model.model_validate
    checked = {"nul_checked": True}  # by the reader
    async for records in reader.records():
        for number, fields, raw in records:
            if isinstance(fields, list):
                chunk.failures.append((number, fields))
            else:
                try:
                    chunk.rows.append((number, validate(fields, context=checked), raw))
                except ValidationError as exc:
                    chunk.failures.append((number, _validation_errors(exc)))
            if chunk.total >= size:
                yield chunk
                chunk = Chunk()
        # Let the batch being written go on: a body already buffered is read without a pause,
        # and the database would wait for the next statement while the loop validates rows.
        await asyncio.sleep(0)
    if chunk.total:
        yield chunk


class Upload:
    def __init__(self, engine: AsyncEngine, audit: AuditLog, run: Run) -> None:
        self.engine = engine
        self.audit = audit
        self.run = run
        self.writer = WRITERS[run.kind]()
        self.digest = hashlib.sha256()
        self.written = 0
        self.batches = 0

    async def write_all(self, conn: AsyncConnection, reader: UploadReader, batch_rows: int) -> None:
        """Write batch after batch; the next batch is read and validated while one is written."""
        pending: asyncio.Task | None = None
        try:
            async for chunk in _chunks(reader, ROW_MODELS[self.run.kind], batch_rows):
                if pending is not None:
                    await pending
                self.batches += 1
                pending = asyncio.create_task(self.write_batch(conn, chunk, self.batches))
            if pending is not None:
                await pending
        finally:
            if pending is not None and not pending.done():
                # The rows read so far are whole: let their batch land before giving up.
                with contextlib.suppress(BaseException):
                    await pending

    async def write_batch(self, conn: AsyncConnection, chunk: Chunk, sequence: int) -> None:
        run = self.run
        now = utcnow()
        failures = list(chunk.failures)
        async with _transaction(conn, repo.PLAN_BY_KEYS) as raw:
            items = await self.writer.prepare(raw, run, chunk.rows, failures)
            try:
                async with raw.transaction():
                    inserted, updated = await self.writer.write(raw, run, items, now)
            except asyncpg.PostgresError:
                inserted, updated = await self._row_by_row(raw, items, failures, now)
            refused = {n for n, _ in failures}
            # Items keep the file's order.
            written = [i.raw for i in items if i.number not in refused] if refused else [i.raw for i in items]
            lines = b"".join(sent + b"\n" for sent in written)
            batch_digest = hashlib.sha256(lines)
            self.digest.update(lines)
            self.written += len(written)
            if failures:
                failures.sort(key=lambda f: f[0])
                await repo.insert_row_errors(
                    raw, run.import_id, [(n, orjson.dumps(e).decode()) for n, e in failures]
                )
            counts = {
                "total": chunk.total,
                "failed": len(failures),
                "inserted": len(inserted),
                "updated": len(updated),
                "unchanged": len(written) - len(inserted) - len(updated),
            }
            await repo.add_counts(raw, run.import_id, **counts)
            summary = {
                "kind": run.kind.value,
                "batch": sequence,
                "first_row": min(n for n, *_ in (*chunk.rows, *chunk.failures)),
                "last_row": max(n for n, *_ in (*chunk.rows, *chunk.failures)),
                "rows": len(written),
                "digest": batch_digest.hexdigest(),
                **counts,
            }
            session = AsyncSession(bind=conn)
            try:
                await self.audit.record(
                    session, run.principal, "import_batch_written", "import_batch", run.import_id, summary
                )
                await emit_batch_written(session, run, sequence, summary)
            finally:
                await session.close()

    async def _row_by_row(
        self, raw: asyncpg.Connection, items: list[Item], failures: list[Failure], now: datetime
    ) -> tuple[set[int], set[int]]:
        """The database refused the batch: each row alone, so only the refused one is left out."""
        inserted: set[int] = set()
        updated: set[int] = set()
        for item in items:
            try:
                async with raw.transaction():
                    new, changed = await self.writer.write(raw, self.run, [item], now)
            except asyncpg.PostgresError as exc:
                failures.append((item.number, _database_errors(exc)))
                continue
            inserted |= new
            updated |= changed
        return inserted, updated


async def run_import(
    engine: AsyncEngine,
    audit: AuditLog,
    principal: Principal,
    kind: ImportKind,
    fmt: ImportFormat,
    target: tuple[int, str],
    chunks: AsyncIterator[bytes],
    *,
    batch_rows: int,
    max_row_bytes: int,
) -> ImportBatchRead:
    """Read an upload and write its rows; the summary of the import once the file is read."""
    reader = UploadReader(chunks, fmt, kind, max_row_bytes)
    await reader.open()  # an empty file or a bad CSV header is refused before anything is written
    bureau_id, bureau_path = target
    async with engine.connect() as conn:
        async with _transaction(conn) as raw:
            batch = await repo.create_batch(
                raw,
                kind=kind.value,
                fmt=fmt.value,
                bureau_id=bureau_id,
                bureau_path=bureau_path,
                account=principal.account_id,
                now=utcnow(),
            )
            session = AsyncSession(bind=conn)
            try:
                await audit.record(
                    session,
                    principal,
                    "import_started",
                    "import_batch",
                    batch["id"],
                    {"kind": kind.value, "format": fmt.value, "bureau_id": bureau_id},
                )
            finally:
                await session.close()
        run = Run(batch["id"], kind, principal, bureau_id, bureau_path, principal.account_id)
        upload = Upload(engine, audit, run)
        raw = (await conn.get_raw_connection()).driver_connection
        await repo.open_work_tables(raw)
        try:
            await upload.write_all(conn, reader, batch_rows)
        except BaseException:
            await _finish(engine, audit, run, ImportStatus.FAILED, None)
            log.warning("import stopped", extra={"import_id": run.import_id, "batches": upload.batches})
            raise
        finally:
            with contextlib.suppress(Exception):
                await repo.close_work_tables(raw)
    digest = upload.digest.hexdigest() if upload.written else None
    return await _finish(engine, audit, run, ImportStatus.COMPLETED, digest)


async def _finish(
    engine: AsyncEngine, audit: AuditLog, run: Run, status: ImportStatus, digest: str | None
) -> ImportBatchRead:
    """Close the import on a connection of its own (the upload's may be broken)."""
    async with engine.connect() as conn, _transaction(conn) as raw:
        batch = await repo.finish_batch(raw, run.import_id, status=status.value, digest=digest, now=utcnow())
        summary = {
            "status": status.value,
            "digest": digest,
            **{k: batch[k] for k in ("rows_total", "rows_written", "rows_failed")},
        }
        session = AsyncSession(bind=conn)
        try:
            await audit.record(
                session, run.principal, "import_finished", "import_batch", run.import_id, summary
            )
        finally:
            await session.close()
    return ImportBatchRead.model_validate(dict(batch))


async def import_target(
    session: AsyncSession, principal: Principal, bureau_id: int | None
) -> tuple[int, str]:
    """Where new rows are kept: the principal's bureau, or a bureau of its subtree."""
    if bureau_id is None or bureau_id == principal.bureau_id:
        return principal.bureau_id, principal.bureau_path
    bureau = await network_repo.get_bureau(session, bureau_id)
    if bureau is None or not principal.in_scope(bureau.path):
        raise NotFound(f"Bureau {bureau_id} not found.")
    return bureau.id, bureau.path  # type: ignore[return-value]


# --- reads ------------------------------------------------------------------------------------


async def read_batch(session: AsyncSession, principal: Principal, import_id: int) -> ImportBatch:
    batch = await repo.get_batch(session, import_id)
    if batch is None or not principal.in_scope(batch.bureau_path):
        raise NotFound(f"Import {import_id} not found.")
    return batch


async def list_batches(
    session: AsyncSession, principal: Principal, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[ImportBatchRead], str | None]:
    after = decode_cursor(cursor, int)
    rows = await repo.list_batches(
        session,
        within_path=principal.bureau_path,
        filters=filters,
        before_id=after[0] if after else None,
        limit=limit + 1,
    )
    page, next_cursor = make_page(rows, limit, lambda b: [b.id])
    return [ImportBatchRead.model_validate(b, from_attributes=True) for b in page], next_cursor


async def list_row_errors(
    session: AsyncSession, principal: Principal, import_id: int, cursor: str | None, limit: int
) -> tuple[list[ImportRowErrorRead], str | None]:
    await read_batch(session, principal, import_id)
    after = decode_cursor(cursor, int)
    rows = await repo.list_row_errors(
        session, import_id, after_row=after[0] if after else None, limit=limit + 1
    )
    page, next_cursor = make_page(rows, limit, lambda e: [e.row_number])
    return [ImportRowErrorRead.model_validate(e, from_attributes=True) for e in page], next_cursor


async def stream_row_errors(
    session: AsyncSession, import_id: int, page_size: int = 1000
) -> AsyncIterator[bytes]:
    """Every row error of an import as NDJSON, read page by page (the caller checked scope)."""
    after: int | None = None
    while True:
        rows = await repo.list_row_errors(session, import_id, after_row=after, limit=page_size)
        if not rows:
            return
        yield b"".join(orjson.dumps({"row_number": r.row_number, "errors": r.errors}) + b"\n" for r in rows)
        after = rows[-1].row_number
