"""Events between services without workers or the relay: a service's outbox read as the relay
hands its events on, and each event handed to another service's inbox as an arq job would."""

from __future__ import annotations

from sqlalchemy import select

from services.common.events import Event
from services.common.jobs import handle_event


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
