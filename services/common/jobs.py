"""arq plumbing shared by every worker: JSON job payloads, common settings, and events.

Jobs may run more than once (arq delivers at least once), so every job here
is idempotent, and enqueuers pass a deterministic ``_job_id``.

A worker of a service that produces events runs the relay
(``services.common.relay``) beside its jobs; a worker of a service that
consumes events runs :func:`handle_event` with the service's handler table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import httpx
import orjson
import redis.exceptions
from arq import Retry, cron
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, create_worker, func
from sqlalchemy.exc import DBAPIError

from services.common.audit import AuditLog, CheckpointStore, CheckpointUnavailable
from services.common.client import ServiceClient
from services.common.db import make_engine, make_sessionmaker
from services.common.events import Event, consumed_by, produced_by
from services.common.idempotency import purge_expired_keys
from services.common.logging import configure_logging
from services.common.outbox import EventHandler, Inbox, Outbox, TransientError
from services.common.relay import HANDLE_EVENT, Relay, consumer_queue
from services.common.settings import ServiceSettings

log = logging.getLogger("platform.jobs")
REDIS_TIMEOUT_SECONDS = 2.0

# handle_event's own retries of a transient failure; past them the job fails, and the
# relay's sweep enqueues it again later.
EVENT_MAX_TRIES = 10
EVENT_RETRY_CAP_SECONDS = 60.0


def serialize_job(data: dict[str, Any]) -> bytes:
    # ``repr`` for what JSON cannot carry (a failed job's exception, say).
    return orjson.dumps(data, default=repr)


def deserialize_job(raw: bytes) -> dict[str, Any]:
    return orjson.loads(raw)


async def create_job_pool(redis_url: str) -> ArqRedis:
    """A pool that checks Redis answers first (retrying for a few seconds)."""
    return await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=serialize_job,
        job_deserializer=deserialize_job,
    )


def job_pool(redis_url: str) -> ArqRedis:
    """A pool that connects on first use: an app starts and serves while Redis is away
    (``/readyz`` reports it), and a command waits at most a couple of seconds for it."""
    pool = ArqRedis.from_url(
        redis_url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
    )
    pool.job_serializer = serialize_job
    pool.job_deserializer = deserialize_job
    return pool


def queue_name(service: str, settings: ServiceSettings) -> str:
    return consumer_queue(settings.queue_prefix, service)


async def check_audit_chain(ctx: dict[str, Any]) -> dict[str, Any]:
    """Verify this service's audit chain against its newest checkpoint and log the outcome
    (it reads the chain and checkpoints a valid one, so idempotent)."""
    async with ctx["sessionmaker"]() as session:
        report = await ctx["audit"].verify(session, checkpoints=ctx.get("audit_checkpoints"))
    level = logging.INFO if report.valid else logging.ERROR
    outcome = {
        "valid": report.valid,
        "entries": report.entries,
        "broken_at": report.broken_at,
        "truncated": report.truncated,
        "checkpoint": report.checkpoint.status if report.checkpoint else None,
    }
    log.log(level, "audit chain checked", extra=outcome)
    return outcome


async def checkpoint_audit_chain(ctx: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint the head of this service's audit chain in Redis (idempotent: the same head
    only refreshes the newest checkpoint's time). A chain that no longer holds the newest
    checkpoint is not checkpointed: the error is logged and the evidence kept."""
    try:
        async with ctx["sessionmaker"]() as session:
            outcome = await ctx["audit"].checkpoint(session, ctx["audit_checkpoints"])
    except CheckpointUnavailable as exc:
        log.warning("audit chain not checkpointed: Redis unavailable", extra={"error": str(exc)})
        return {"checkpointed": False, "error": str(exc)}
    log.info("audit chain checkpointed", extra=outcome)
    return outcome


def checkpoint_cron(settings: ServiceSettings) -> Any:
    """The checkpoint every ``audit_checkpoint_minutes`` (a divisor of 60) and at worker startup."""
    every = settings.audit_checkpoint_minutes
    if every < 1 or 60 % every:
        raise ValueError(f"AUDIT_CHECKPOINT_MINUTES must divide 60, not {every}")
    return cron(checkpoint_audit_chain, minute=set(range(0, 60, every)), unique=True, run_at_startup=True)


async def purge_idempotency_keys(ctx: dict[str, Any]) -> dict[str, int]:
    """Delete the Idempotency-Key rows past their lifetime (idempotent: a second run finds none)."""
    async with ctx["sessionmaker"]() as session:
        purged = await purge_expired_keys(session, ctx["settings"].idempotency_key_ttl_seconds)
        await session.commit()
    log.info("idempotency keys purged", extra={"purged": purged})
    return {"purged": purged}


# Jobs every service's worker runs, added to its own: the audit chain checked nightly,
# expired Idempotency-Keys purged hourly (and the audit chain's head checkpointed every few
# minutes: checkpoint_cron, from the settings).
COMMON_FUNCTIONS = (check_audit_chain, purge_idempotency_keys, checkpoint_audit_chain)
COMMON_CRON_JOBS = (
    cron(check_audit_chain, hour={2}, minute={15}, unique=True),
    cron(purge_idempotency_keys, minute={40}, unique=True),
)


def _with_common(own: Any, common: tuple[Any, ...], name_of) -> list[Any]:
    mine = list(own or ())
    names = {name_of(job) for job in mine}
    return mine + [job for job in common if name_of(job) not in names]


# --- consuming events -----------------------------------------------------------


class NoHandler(LookupError):
    """An event reached a service that has no handler for its type: the job fails, visibly,
    and the relay tries again later (after the handler is deployed, it applies)."""


_TRANSIENT = (
    TransientError,
    OSError,  # ConnectionError and socket errors included
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    httpx.TransportError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same event again later may succeed: the database, Redis or a
    service was unreachable, or the database asked for a retry (deadlock, serialization)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _TRANSIENT):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def handle_event(ctx: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """Apply one event through this service's inbox (at most once in effect)."""
    received = Event.model_validate(event)
    handler: EventHandler | None = ctx["event_handlers"].get(received.type)
    if handler is None:
        raise NoHandler(f"{ctx['service']} has no handler for {received.type}")
    try:
        async with ctx["sessionmaker"]() as session:
            outcome = await ctx["inbox"].process(session, received, handler)
    except Exception as exc:
        if not is_transient(exc):
            raise
        delay = min(EVENT_RETRY_CAP_SECONDS, 0.5 * 2 ** ctx["job_try"])
        log.warning(
            "event handling failed; retrying",
            extra={
                "event_id": str(received.id),
                "type": received.type,
                "error": repr(exc),
                "retry_in": delay,
            },
        )
        raise Retry(defer=delay) from exc
    return {"event_id": str(received.id), "outcome": outcome.value if outcome else "duplicate"}


def _unhandled(service: str, handlers: Mapping[str, EventHandler]) -> list[str]:
    """The types the catalogue sends ``service`` that it has no handler for; a handler of a
    type it is not sent is a mistake, refused at once."""
    consumed = consumed_by(service)
    foreign = sorted(set(handlers) - set(consumed))
    if foreign:
        raise ValueError(f"{service} handles events the catalogue does not send it: {', '.join(foreign)}")
    return sorted(set(consumed) - set(handlers))


# --- worker settings ------------------------------------------------------------


def worker_settings(
    service: str,
    settings: ServiceSettings,
    audit: AuditLog,
    *,
    outbox: Outbox | None = None,
    inbox: Inbox | None = None,
    handlers: Mapping[str, EventHandler] | None = None,
    functions: Sequence[Any] = (),
    **overrides: Any,
) -> dict[str, Any]:
    """The attributes every service's ``WorkerSettings`` shares.

    With an ``outbox`` and events to produce, the worker runs the relay; with an
    ``inbox`` and events to consume, it runs ``handle_event`` with ``handlers``.
    """
    handlers = dict(handlers or {})
    relays = outbox is not None and bool(produced_by(service))
    consumes = inbox is not None and bool(consumed_by(service))
    unhandled = _unhandled(service, handlers) if consumes else []
    if consumes:
        functions = [*functions, func(handle_event, name=HANDLE_EVENT, max_tries=EVENT_MAX_TRIES)]

    async def on_startup(ctx: dict[str, Any]) -> None:
        configure_logging(f"{service}-worker", settings.log_level)
        engine = make_engine(settings.database_url, pool_size=5, max_overflow=5)
        ctx["service"] = service
        ctx["engine"] = engine
        ctx["sessionmaker"] = make_sessionmaker(engine)
        ctx["audit"] = audit
        ctx["audit_checkpoints"] = CheckpointStore.for_service(settings, service)
        ctx["settings"] = settings
        ctx["services"] = ServiceClient(settings)  # the same client the routes use
        ctx["inbox"] = inbox
        ctx["event_handlers"] = handlers
        if unhandled:
            log.warning(
                "events this service consumes have no handler yet: they fail and the relay retries them",
                extra={"types": unhandled},
            )
        if relays:
            # Its own connections: a worker busy with jobs must not hold up the relay.
            ctx["relay_engine"] = make_engine(settings.database_url, pool_size=1, max_overflow=1)
            relay = Relay(ctx["relay_engine"], outbox, ctx["redis"], queue_prefix=settings.queue_prefix)
            ctx["relay_task"] = asyncio.create_task(relay.run(), name=f"{service}-relay")

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        task = ctx.get("relay_task")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await ctx["relay_engine"].dispose()
        await ctx["services"].aclose()
        await ctx["audit_checkpoints"].aclose()
        await ctx["engine"].dispose()

    functions = _with_common(functions, COMMON_FUNCTIONS, lambda f: getattr(f, "name", None) or f.__name__)
    cron_jobs = _with_common(
        overrides.pop("cron_jobs", None), (*COMMON_CRON_JOBS, checkpoint_cron(settings)), lambda c: c.name
    )
    return {
        "functions": functions,
        "cron_jobs": cron_jobs,
        "queue_name": queue_name(service, settings),
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "job_serializer": serialize_job,
        "job_deserializer": deserialize_job,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "poll_delay": settings.worker_poll_delay,
        "job_timeout": settings.worker_job_timeout_seconds,
        "job_completion_wait": settings.worker_drain_seconds,
        "health_check_interval": 30,
        "keep_result": 3600,
        **overrides,
    }


def run_worker(settings_cls: Any) -> Worker:
    """arq's ``run_worker``, but a job's in-progress mark lasts the job timeout
    (``WORKER_JOB_TIMEOUT_SECONDS``) plus 10 s, not the longest timeout of any function.

    The mark keeps other workers off a running job; a worker killed mid-job (SIGKILL, out of
    memory) leaves it behind, and no worker takes the job again before it expires. arq sizes it
    by its longest function, the scheduled runs' 15-minute lease: an event would wait a quarter
    of an hour. Running a job twice is harmless here: an event applies once (the inbox), and a
    scheduled run takes its tick under a lease in the database.
    """
    worker = create_worker(settings_cls)
    worker.in_progress_timeout_s = getattr(settings_cls, "job_timeout", 300) + 10
    worker.run()
    return worker
