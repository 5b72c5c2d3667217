"""arq plumbing shared by every worker: JSON job payloads and common settings.

Jobs may run more than once (arq delivers at least once), so every job here
is idempotent, and enqueuers pass a deterministic ``_job_id``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from arq import cron
from arq.connections import ArqRedis, RedisSettings, create_pool

from services.common.audit import AuditLog
from services.common.client import ServiceClient
from services.common.db import make_engine, make_sessionmaker
from services.common.idempotency import purge_expired_keys
from services.common.logging import configure_logging
from services.common.settings import ServiceSettings

log = logging.getLogger("platform.jobs")
REDIS_TIMEOUT_SECONDS = 2.0


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


async def check_audit_chain(ctx: dict[str, Any]) -> dict[str, Any]:
    """Verify this service's audit chain and log the outcome (read-only, so idempotent)."""
    async with ctx["sessionmaker"]() as session:
        report = await ctx["audit"].verify(session)
    level = logging.INFO if report.valid else logging.ERROR
    log.log(
        level,
        "audit chain checked",
        extra={"valid": report.valid, "entries": report.entries, "broken_at": report.broken_at},
    )
    return {"valid": report.valid, "entries": report.entries, "broken_at": report.broken_at}


async def purge_idempotency_keys(ctx: dict[str, Any]) -> dict[str, int]:
    """Delete the Idempotency-Key rows past their lifetime (idempotent: a second run finds none)."""
    async with ctx["sessionmaker"]() as session:
        purged = await purge_expired_keys(session, ctx["settings"].idempotency_key_ttl_seconds)
        await session.commit()
    log.info("idempotency keys purged", extra={"purged": purged})
    return {"purged": purged}


# Jobs every service's worker runs, added to its own: the audit chain checked nightly,
# expired Idempotency-Keys purged hourly.
COMMON_FUNCTIONS = (check_audit_chain, purge_idempotency_keys)
COMMON_CRON_JOBS = (
    cron(check_audit_chain, hour={2}, minute={15}, unique=True),
    cron(purge_idempotency_keys, minute={40}, unique=True),
)


def _with_common(own: Any, common: tuple[Any, ...], name_of) -> list[Any]:
    mine = list(own or ())
    names = {name_of(job) for job in mine}
    return mine + [job for job in common if name_of(job) not in names]


def worker_settings(
    service: str, settings: ServiceSettings, audit: AuditLog, **overrides: Any
) -> dict[str, Any]:
    """The attributes every service's ``WorkerSettings`` shares."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        configure_logging(f"{service}-worker", settings.log_level)
        engine = make_engine(settings.database_url, pool_size=5, max_overflow=5)
        ctx["engine"] = engine
        ctx["sessionmaker"] = make_sessionmaker(engine)
        ctx["audit"] = audit
        ctx["settings"] = settings
        ctx["services"] = ServiceClient(settings)  # the same client the routes use

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await ctx["services"].aclose()
        await ctx["engine"].dispose()

    functions = _with_common(overrides.pop("functions", None), COMMON_FUNCTIONS, lambda f: f.__name__)
    cron_jobs = _with_common(overrides.pop("cron_jobs", None), COMMON_CRON_JOBS, lambda c: c.name)
    return {
        "functions": functions,
        "cron_jobs": cron_jobs,
        "queue_name": f"arq:{service}",
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "job_serializer": serialize_job,
        "job_deserializer": deserialize_job,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "poll_delay": settings.worker_poll_delay,
        "job_completion_wait": 30,
        "health_check_interval": 30,
        "keep_result": 3600,
        **overrides,
    }
