"""Events between services without workers or the relay: a service's outbox read as the relay
hands its events on, and each event handed to another service's inbox as an arq job would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from services.common.events import Event
from services.common.jobs import handle_event


def envelope(
    type_: str,
    aggregate_type: str,
    aggregate_id: int | str,
    aggregate_version: int,
    payload: dict[str, Any],
    *,
    bureau_id: int,
    bureau_path: str,
    version: int = 1,
    event_id: str | None = None,
) -> dict:
    """An event as the relay hands it on (a new id unless ``event_id``), occurring now."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": type_,
        "version": version,
        "aggregate_type": aggregate_type,
        "aggregate_id": str(aggregate_id),
        "aggregate_version": aggregate_version,
        "bureau_id": bureau_id,
        "bureau_path": bureau_path,
        "occurred_at": datetime.now(UTC).isoformat(),
        "request_id": None,
        "payload": payload,
    }


def worker_ctx(client, service: str, models, handlers) -> dict:
    """What the ``service``'s worker hands an event job: its sessionmaker, inbox and handlers."""
    return {
        "service": service,
        "sessionmaker": client.app.state.sessionmaker,
        "inbox": models.INBOX,
        "event_handlers": handlers,
        "job_try": 1,
    }


async def outbox_events(client, table, *clauses, **where) -> list[dict]:
    """The events of an app's outbox ``table``, oldest first, as the relay hands them to a
    consumer; ``clauses`` and ``where`` (column=value) narrow them."""
    query = select(table).where(*clauses)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    async with client.app.state.sessionmaker() as session:
        rows = (
            (await (await session.connection()).execute(query.order_by(table.c.occurred_at))).mappings().all()
        )
    return [Event.model_validate(dict(r)).model_dump(mode="json") for r in rows]


async def deliver(ctx: dict, *events: dict) -> list[str]:
    """Each event handed in turn to the inbox of ``ctx`` (see :func:`worker_ctx`); the outcomes."""
    return [(await handle_event(ctx, event))["outcome"] for event in events]
