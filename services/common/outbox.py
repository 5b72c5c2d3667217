"""The outbox a producer writes events to, and the inbox a consumer applies them through.

Producer: :meth:`Outbox.emit` adds the event to the caller's session, so it is
committed with the change it reports or not at all. The relay
(``services.common.relay``) later claims pending rows and enqueues them.

Consumer: :meth:`Inbox.process` records the event id and applies the
service's handler in one transaction, so a redelivered event changes nothing;
an event older than the newest applied version of its aggregate is recorded
as ``stale`` and not applied; a handler may refuse an event (``rejected``,
with its reason), which is recorded and listed, never dropped silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal, Role
from services.common.context import current_request_id
from services.common.db import NAMING_CONVENTION, utcnow
from services.common.events import Event, event_type
from services.common.pagination import decode_cursor, make_page
from services.common.problems import UnprocessableEntity

OUTBOX_TABLE = "outbox_event"
INBOX_TABLE = "inbox_event"
# NOTIFY channel the outbox trigger signals on commit; the relay LISTENs to it.
NOTIFY_CHANNEL = "outbox_event"


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        OUTBOX_TABLE,
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("type", String(128), nullable=False),
        Column("version", Integer, nullable=False),
        Column("aggregate_type", String(64), nullable=False),
        Column("aggregate_id", String(64), nullable=False),
        Column("aggregate_version", BigInteger, nullable=False),
        Column("bureau_id", BigInteger),
        Column("bureau_path", String(512)),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("request_id", String(128)),
        Column("payload", JSONB, nullable=False),
        Column("enqueued_at", DateTime(timezone=True)),  # null: pending, not yet handed to arq
        Column("delivered_at", DateTime(timezone=True)),  # every consumer's job completed
        Column("attempts", Integer, nullable=False),  # times handed to arq
        Column("last_error", Text),
        # What the relay claims, and what its sweep confirms: both stay small.
        Index("ix_outbox_event_pending", "occurred_at", postgresql_where=text("enqueued_at IS NULL")),
        Index(
            "ix_outbox_event_unconfirmed",
            "enqueued_at",
            postgresql_where=text("enqueued_at IS NOT NULL AND delivered_at IS NULL"),
        ),
        Index("ix_outbox_event_occurred_at", "occurred_at", "id"),
        Index("ix_outbox_event_aggregate", "aggregate_type", "aggregate_id", "aggregate_version"),
    )


class InboxOutcome(StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"  # the handler refused it, with a reason
    STALE = "stale"  # older than a version of its aggregate already applied


def inbox_table(metadata: MetaData) -> Table:
    outcomes = ", ".join(f"'{o.value}'" for o in InboxOutcome)
    return Table(
        INBOX_TABLE,
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("type", String(128), nullable=False),
        Column("aggregate_type", String(64), nullable=False),
        Column("aggregate_id", String(64), nullable=False),
        Column("aggregate_version", BigInteger, nullable=False),
        Column("bureau_id", BigInteger),
        Column("bureau_path", String(512)),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
        Column("outcome", String(16), nullable=False),
        Column("reason", Text),
        CheckConstraint(f"outcome IN ({outcomes})", name="outcome"),
        # The highest version applied per aggregate is read from here.
        Index(
            "ix_inbox_event_applied",
            "aggregate_type",
            "aggregate_id",
            "aggregate_version",
            postgresql_where=text("outcome = 'applied'"),
        ),
        Index("ix_inbox_event_processed_at", "processed_at", "event_id"),
    )


def notify_trigger_sql() -> tuple[list[str], list[str]]:
    """(upgrade, downgrade) statements: a committed outbox insert wakes the relay."""
    upgrade = [
        f"""CREATE FUNCTION {OUTBOX_TABLE}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
            RETURN NULL;
        END $$""",
        f"""CREATE TRIGGER {OUTBOX_TABLE}_notify AFTER INSERT ON {OUTBOX_TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION {OUTBOX_TABLE}_notify()""",
    ]
    downgrade = [
        f"DROP TRIGGER IF EXISTS {OUTBOX_TABLE}_notify ON {OUTBOX_TABLE}",
        f"DROP FUNCTION IF EXISTS {OUTBOX_TABLE}_notify()",
    ]
    return upgrade, downgrade


def create_event_tables(op) -> None:
    """Migration step: the outbox and inbox tables, and the trigger that wakes the relay."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    outbox_table(metadata)
    inbox_table(metadata)
    metadata.create_all(op.get_bind())
    for statement in notify_trigger_sql()[0]:
        op.execute(statement)


def drop_event_tables(op) -> None:
    for statement in notify_trigger_sql()[1]:
        op.execute(statement)
    op.drop_table(INBOX_TABLE)
    op.drop_table(OUTBOX_TABLE)


# --- listing ------------------------------------------------------------------

OutboxState = Literal["pending", "enqueued", "delivered"]


class OutboxEventRead(Event):
    state: OutboxState
    enqueued_at: datetime | None
    delivered_at: datetime | None
    attempts: int
    last_error: str | None


class InboxEventRead(BaseModel):
    event_id: uuid.UUID
    type: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    bureau_id: int | None
    bureau_path: str | None
    occurred_at: datetime
    processed_at: datetime
    outcome: InboxOutcome
    reason: str | None


def _visible_to(column, principal: Principal):
    """National administrators see every event; anyone else those of their bureau subtree."""
    if principal.is_national and principal.has_role(Role.ADMIN):
        return true()
    return column.startswith(principal.bureau_path, autoescape=True)


def _after(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The (instant, id) a newest-first page continues after."""
    key = decode_cursor(cursor, str, str)
    if key is None:
        return None
    try:
        at, event_id = datetime.fromisoformat(key[0]), uuid.UUID(key[1])
        if at.tzinfo is None:
            raise ValueError("not an instant")
        return at, event_id
    except ValueError:
        raise UnprocessableEntity(
            "The cursor is not one this list issued.",
            errors=[{"loc": "query.cursor", "message": "invalid cursor", "type": "cursor"}],
        ) from None


def _page(
    table: Table,
    at: str,
    key: str,
    principal: Principal,
    filters: dict[str, Any],
    cursor: str | None,
    limit: int,
):
    """Newest first by (``at``, ``key``), in the principal's scope, after the cursor."""
    t = table
    query = (
        select(t)
        .where(_visible_to(t.c.bureau_path, principal))
        .order_by(t.c[at].desc(), t.c[key].desc())
        .limit(limit + 1)
    )
    for name, value in filters.items():
        if value is not None:
            query = query.where(t.c[name] == value)
    after = _after(cursor)
    if after is not None:
        query = query.where(tuple_(t.c[at], t.c[key]) < after)
    return query


# --- producer -------------------------------------------------------------------


class Outbox:
    """The outbox of one producing service."""

    def __init__(self, table: Table, service: str) -> None:
        self.table = table
        self.service = service
        self._insert = table.insert().values(attempts=0)  # built once; each emit only binds values

    async def emit(
        self,
        session: AsyncSession,
        type: str,
        *,
        aggregate_type: str,
        aggregate_id: str | int,
        aggregate_version: int,
        bureau_id: int | None,
        bureau_path: str | None,
        payload: BaseModel | dict[str, Any],
    ) -> Event:
        """Add one event to the caller's transaction (no commit): it is sent only if that commits.

        The payload is checked against the catalogue's model of ``type``; an event
        the catalogue does not know, or that another service produces, is refused.
        """
        spec = event_type(type)
        if spec.producer != self.service:
            raise ValueError(f"{type} is produced by {spec.producer}, not {self.service}")
        if isinstance(payload, BaseModel):
            payload = payload.model_dump()
        checked = spec.payload.model_validate(payload)
        event = Event(
            id=uuid.uuid4(),
            type=type,
            version=spec.version,
            aggregate_type=aggregate_type,
            aggregate_id=str(aggregate_id),
            aggregate_version=aggregate_version,
            bureau_id=bureau_id,
            bureau_path=bureau_path,
            occurred_at=utcnow(),
            request_id=current_request_id(),
            payload=checked.model_dump(mode="json"),
        )
        # On the session's connection: the same transaction, without the ORM's execute path.
        await (await session.connection()).execute(self._insert, event.model_dump())
        return event

    async def list(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        state: OutboxState | None,
        filters: dict[str, Any],
        cursor: str | None,
        limit: int,
    ) -> tuple[list[OutboxEventRead], str | None]:
        t = self.table
        query = _page(t, "occurred_at", "id", principal, filters, cursor, limit)
        if state == "pending":
            query = query.where(t.c.enqueued_at.is_(None))
        elif state == "enqueued":
            query = query.where(t.c.enqueued_at.is_not(None), t.c.delivered_at.is_(None))
        elif state == "delivered":
            query = query.where(t.c.delivered_at.is_not(None))
        rows = (await session.exec(query)).mappings().all()
        rows, next_cursor = make_page(
            list(rows), limit, lambda r: [r["occurred_at"].isoformat(), str(r["id"])]
        )
        return [OutboxEventRead(**r, state=outbox_state(r)) for r in rows], next_cursor


def outbox_state(row) -> OutboxState:
    if row["delivered_at"] is not None:
        return "delivered"
    return "pending" if row["enqueued_at"] is None else "enqueued"


# --- consumer -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a handler made of an event."""

    outcome: InboxOutcome
    reason: str | None = None

    @classmethod
    def applied(cls, reason: str | None = None) -> Outcome:
        return cls(InboxOutcome.APPLIED, reason)

    @classmethod
    def rejected(cls, reason: str) -> Outcome:
        return cls(InboxOutcome.REJECTED, reason)


PayloadT = TypeVar("PayloadT", bound=BaseModel)


def parse_payload(model: type[PayloadT], event: Event) -> PayloadT | Outcome:
    """The event's payload read as the catalogue's ``model``, or the rejection a handler returns
    when it does not match (the first mismatch named)."""
    try:
        return model.model_validate(event.payload)
    except ValidationError as exc:
        return Outcome.rejected(f"The payload does not match the catalogue: {exc.errors()[0]['msg']}.")


# A consumer's handler of one event type: works in the given session (never commits) and
# says what it made of the event. What it wrote is committed with the inbox row, a
# rejection included (it may, say, emit an answering event).
EventHandler = Callable[[AsyncSession, Event], Awaitable[Outcome]]


def every_version(handler: EventHandler) -> EventHandler:
    """Marks a handler that keeps each event on its own (a log of changes, not the aggregate's
    latest state): an older version arriving after a newer one is applied, not stale. The inbox
    still applies each event id once."""
    handler.applies_every_version = True  # type: ignore[attr-defined]
    return handler


class TransientError(Exception):
    """Raised by a handler when trying again later may succeed (a service it needs is down)."""


class Inbox:
    """The inbox of one consuming service."""

    def __init__(self, table: Table) -> None:
        self.table = table
        t = table
        # Built once: constructing these per event costs more than running them.
        self._lock = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
        highest = (
            select(func.max(t.c.aggregate_version))
            .where(
                t.c.aggregate_type == bindparam("of_type"),
                t.c.aggregate_id == bindparam("of_id"),
                t.c.outcome == InboxOutcome.APPLIED.value,
            )
            .scalar_subquery()
        )
        # RETURNING reads the statement's snapshot: the highest version before this row.
        self._record = (
            pg_insert(t)
            .values(processed_at=func.clock_timestamp(), outcome=InboxOutcome.APPLIED.value)
            .on_conflict_do_nothing(index_elements=[t.c.event_id])
            .returning(highest.label("highest"))
        )
        self._settle = (
            t.update().where(t.c.event_id == bindparam("event_id_")).values(outcome=bindparam("outcome_"))
        )

    async def process(
        self, session: AsyncSession, event: Event, handler: EventHandler
    ) -> InboxOutcome | None:
        """Record and apply one event in one transaction; None if it was already processed."""
        # Core statements on the session's connection: the ORM's execute path costs more.
        conn = await session.connection()
        # One event of an aggregate at a time, so "the highest version applied" cannot
        # change between reading it and applying this event (a duplicate waits here too).
        await conn.execute(self._lock, {"key": f"{event.aggregate_type}:{event.aggregate_id}"})
        row = (
            await conn.execute(
                self._record,
                {
                    "event_id": event.id,
                    "type": event.type,
                    "aggregate_type": event.aggregate_type,
                    "aggregate_id": event.aggregate_id,
                    "aggregate_version": event.aggregate_version,
                    "bureau_id": event.bureau_id,
                    "bureau_path": event.bureau_path,
                    "occurred_at": event.occurred_at,
                    "of_type": event.aggregate_type,
                    "of_id": event.aggregate_id,
                },
            )
        ).first()
        if row is None:
            await session.rollback()
            return None
        if (
            row.highest is not None
            and event.aggregate_version < row.highest
            and not getattr(handler, "applies_every_version", False)
        ):
            outcome = Outcome(
                InboxOutcome.STALE,
                f"version {event.aggregate_version} is older than version {row.highest}, already applied",
            )
        else:
            outcome = await handler(session, event)
            if not isinstance(outcome, Outcome):
                raise TypeError(f"the handler of {event.type} returned {outcome!r}, not an Outcome")
        if outcome != Outcome.applied():
            await conn.execute(
                self._settle,
                {"event_id_": event.id, "outcome_": outcome.outcome.value, "reason": outcome.reason},
            )
        await session.commit()
        return outcome.outcome

    async def list(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        filters: dict[str, Any],
        cursor: str | None,
        limit: int,
    ) -> tuple[list[InboxEventRead], str | None]:
        query = _page(self.table, "processed_at", "event_id", principal, filters, cursor, limit)
        rows = (await session.exec(query)).mappings().all()
        rows, next_cursor = make_page(
            list(rows), limit, lambda r: [r["processed_at"].isoformat(), str(r["event_id"])]
        )
        return [InboxEventRead(**r) for r in rows], next_cursor
