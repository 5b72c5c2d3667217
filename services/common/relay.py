"""The relay: hands committed outbox rows to their consumers' arq queues, and makes sure they arrive.

It runs as a long-lived task inside each producing service's worker.

* **Claim, never follow a cursor.** Transactions commit out of order, so the
  relay takes whatever is pending (``enqueued_at IS NULL … FOR UPDATE SKIP
  LOCKED``) rather than reading past the last id it saw: a row that commits
  late is still pending, and is taken on the next round.
* **One job per consumer.** Each event becomes a ``handle_event`` job on the
  queue ``<prefix><consumer>`` with job id ``<consumer>:<event id>``: arq job ids
  are global Redis keys, and a job id arq already holds is not enqueued twice.
  ``enqueued_at`` is set in the claiming transaction, after the enqueue worked.
* **Confirm, because Redis forgets.** Redis runs without persistence, so a
  restart loses queued jobs. A sweep looks at rows enqueued a few seconds ago
  and not yet confirmed, asks arq for each job's status and result, enqueues
  again the jobs that are gone or failed (with a growing delay), and marks the
  row ``delivered_at`` once every consumer's job completed.
* **Never crash.** A Redis or PostgreSQL error is logged, waited out with
  backoff, and retried. The relay wakes on PostgreSQL NOTIFY (a trigger on the
  outbox) and polls as a fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import JobStatus, deserialize_result, serialize_job
from arq.utils import timestamp_ms
from sqlalchemy import Float, func, literal, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.events import EVENT_TYPES, Event
from services.common.outbox import NOTIFY_CHANNEL, Outbox

log = logging.getLogger("platform.relay")

HANDLE_EVENT = "handle_event"
# A queued job older than this is dropped by arq unstarted; the sweep enqueues it again.
JOB_EXPIRES_MS = 86_400_000


def consumer_queue(prefix: str, consumer: str) -> str:
    return f"{prefix}{consumer}"


def event_job_id(consumer: str, event_id: Any) -> str:
    return f"{consumer}:{event_id}"


# ArqRedis.enqueue_job for a whole batch in one round trip, with its rule: a job whose
# id arq still holds (queued, running, or its result kept) is not enqueued again.
# KEYS: job key, result key, queue per job. ARGV: expiry (ms), then id, score, job per job.
_ENQUEUE_SCRIPT = """
local enqueued = 0
for i = 0, #KEYS / 3 - 1 do
    if redis.call('EXISTS', KEYS[i * 3 + 1], KEYS[i * 3 + 2]) == 0 then
        redis.call('PSETEX', KEYS[i * 3 + 1], ARGV[1], ARGV[i * 3 + 4])
        redis.call('ZADD', KEYS[i * 3 + 3], ARGV[i * 3 + 3], ARGV[i * 3 + 2])
        enqueued = enqueued + 1
    end
end
return enqueued
"""


@dataclass(frozen=True, slots=True)
class JobState:
    status: JobStatus
    error: str | None = None  # what a failed job raised

    @property
    def succeeded(self) -> bool:
        return self.status is JobStatus.complete and self.error is None

    @property
    def failed(self) -> bool:
        return self.status is JobStatus.complete and self.error is not None


async def job_states(redis: ArqRedis, jobs: list[tuple[str, str]]) -> list[JobState]:
    """``arq.jobs.Job(id).status()`` and ``.result_info()`` of many (job id, queue) pairs
    in one round trip, read from the keys arq itself reads."""
    async with redis.pipeline(transaction=False) as pipe:
        for job_id, queue in jobs:
            pipe.get(result_key_prefix + job_id)
            pipe.exists(in_progress_key_prefix + job_id)
            pipe.zscore(queue, job_id)
        replies = await pipe.execute()
    now = timestamp_ms()
    states = []
    for i in range(len(jobs)):
        result, in_progress, score = replies[i * 3 : i * 3 + 3]
        if result:
            info = deserialize_result(result, deserializer=redis.job_deserializer)
            states.append(JobState(JobStatus.complete, None if info.success else str(info.result)))
        elif in_progress:
            states.append(JobState(JobStatus.in_progress))
        elif score is not None:
            states.append(JobState(JobStatus.deferred if score > now else JobStatus.queued))
        else:
            states.append(JobState(JobStatus.not_found))
    return states


@dataclass
class SweepReport:
    delivered: int = 0
    enqueued_again: int = 0


class Relay:
    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        redis: ArqRedis,
        *,
        queue_prefix: str = "arq:",
        batch_size: int = 500,
        poll_interval: float = 1.0,
        sweep_interval: float = 1.0,
        confirm_after: float = 3.0,
        max_confirm_wait: float = 300.0,
        max_backoff: float = 10.0,
        gather_delay: float = 0.01,
    ) -> None:
        self.engine = engine
        self.table = outbox.table
        self.redis = redis
        self.queue_prefix = queue_prefix
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.sweep_interval = sweep_interval
        self.confirm_after = confirm_after
        self.max_confirm_wait = max_confirm_wait
        self.max_backoff = max_backoff
        # Woken by a commit, wait this long for more: fewer, larger batches under load.
        self.gather_delay = gather_delay
        self.failures = 0  # consecutive failed rounds; 0 when the last one worked
        self._enqueue_script = redis.register_script(_ENQUEUE_SCRIPT)
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    # --- the loop ---------------------------------------------------------------

    async def run(self) -> None:
        """Relay and confirm until cancelled; errors are logged and retried, never raised."""
        next_sweep = 0.0
        try:
            while True:
                try:
                    await self._listen()
                    self._wake.clear()  # before reading, so a commit during the round wakes the next
                    moved = await self.relay_once()
                    loop_time = asyncio.get_running_loop().time()
                    if loop_time >= next_sweep:
                        await self.sweep_once()
                        next_sweep = loop_time + self.sweep_interval
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.failures += 1
                    delay = min(self.max_backoff, 0.1 * 2**self.failures)
                    log.warning(
                        "event relay round failed; retrying",
                        extra={"error": f"{type(exc).__name__}: {exc}", "retry_in": delay},
                    )
                    await asyncio.sleep(delay)
                    continue
                if self.failures:
                    log.info("event relay recovered", extra={"failed_rounds": self.failures})
                    self.failures = 0
                if moved < self.batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                        await asyncio.sleep(self.gather_delay)
        finally:
            await self._close_listener()

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._listener = await asyncpg.connect(dsn, timeout=5)
        await self._listener.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), 2)

    # --- relaying ---------------------------------------------------------------

    async def relay_once(self) -> int:
        """Claim up to a batch of pending rows, enqueue them, mark them enqueued; how many."""
        t = self.table
        async with self.engine.begin() as conn:
            rows = (
                (
                    await conn.execute(
                        select(t)
                        .where(t.c.enqueued_at.is_(None))
                        .order_by(t.c.occurred_at)
                        .limit(self.batch_size)
                        .with_for_update(skip_locked=True)
                    )
                )
                .mappings()
                .all()
            )
            if not rows:
                return 0
            await self._enqueue([(consumer, row) for row in rows for consumer in _consumers(row)])
            await conn.execute(
                t.update()
                .where(t.c.id.in_([row["id"] for row in rows]))
                .values(enqueued_at=func.clock_timestamp(), attempts=t.c.attempts + 1)
            )
            # A type the catalogue no longer lists has no one to go to: say so, and finish it.
            orphans = [row["id"] for row in rows if not _consumers(row)]
            if orphans:
                await conn.execute(
                    t.update()
                    .where(t.c.id.in_(orphans))
                    .values(delivered_at=func.clock_timestamp(), last_error="no consumer in the catalogue")
                )
        return len(rows)

    async def _enqueue(self, jobs: list[tuple[str, Any]]) -> None:
        if not jobs:
            return
        keys: list[str] = []
        args: list[Any] = [JOB_EXPIRES_MS]
        now = timestamp_ms()
        events: dict[Any, dict[str, Any]] = {}
        for consumer, row in jobs:
            job_id = event_job_id(consumer, row["id"])
            if row["id"] not in events:
                events[row["id"]] = Event.model_validate(dict(row)).model_dump(mode="json")
            job = serialize_job(
                HANDLE_EVENT, (events[row["id"]],), {}, None, now, serializer=self.redis.job_serializer
            )
            keys += [job_key_prefix + job_id, result_key_prefix + job_id, self.queue(consumer)]
            args += [job_id, now, job]
        await self._enqueue_script(keys=keys, args=args)

    def queue(self, consumer: str) -> str:
        return consumer_queue(self.queue_prefix, consumer)

    # --- confirming -------------------------------------------------------------

    async def sweep_once(self) -> SweepReport:
        """Confirm rows enqueued a while ago: delivered, still on their way, or to enqueue again."""
        t = self.table
        report = SweepReport()
        # Each further attempt waits twice as long before it is looked at again.
        wait = func.least(
            literal(self.confirm_after, Float) * func.power(2, t.c.attempts - 1),
            literal(self.max_confirm_wait, Float),
        )
        due = t.c.enqueued_at < func.clock_timestamp() - literal_column("interval '1 second'") * wait
        confirmed_jobs: list[str] = []
        async with self.engine.begin() as conn:
            rows = (
                (
                    await conn.execute(
                        select(t)
                        .where(t.c.enqueued_at.is_not(None), t.c.delivered_at.is_(None), due)
                        .order_by(t.c.enqueued_at)
                        .limit(self.batch_size)
                        .with_for_update(skip_locked=True)
                    )
                )
                .mappings()
                .all()
            )
            if not rows:
                return report
            jobs = [(consumer, row) for row in rows for consumer in _consumers(row)]
            states = dict(
                zip(
                    [(consumer, row["id"]) for consumer, row in jobs],
                    await job_states(
                        self.redis, [(event_job_id(c, row["id"]), self.queue(c)) for c, row in jobs]
                    ),
                    strict=True,
                )
            )
            delivered, again, errors = [], [], {}
            for row in rows:
                mine = {c: states[(c, row["id"])] for c in _consumers(row)}
                if all(state.succeeded for state in mine.values()):
                    delivered.append(row["id"])
                    confirmed_jobs += [event_job_id(c, row["id"]) for c in mine]
                    continue
                lost = {c: s for c, s in mine.items() if s.status is JobStatus.not_found or s.failed}
                if lost:
                    again += [(c, row) for c in lost]
                    errors[row["id"]] = "; ".join(
                        f"{c}: {s.error if s.failed else 'job lost from the queue'}" for c, s in lost.items()
                    )
            if again:
                # A failed job's result holds its id: drop it, so the job can be enqueued again.
                failed = [event_job_id(c, row["id"]) for c, row in again if states[(c, row["id"])].failed]
                if failed:
                    await self.redis.delete(*(result_key_prefix + job_id for job_id in failed))
                await self._enqueue(again)
                for row_id, error in errors.items():
                    await conn.execute(
                        t.update()
                        .where(t.c.id == row_id)
                        .values(
                            enqueued_at=func.clock_timestamp(),
                            attempts=t.c.attempts + 1,
                            last_error=error[:2000],
                        )
                    )
                log.warning("events enqueued again", extra={"events": len(errors), "jobs": len(again)})
            if delivered:
                await conn.execute(
                    t.update().where(t.c.id.in_(delivered)).values(delivered_at=func.clock_timestamp())
                )
        # The inbox now keeps what the results said; their keys need not wait for expiry.
        if confirmed_jobs:
            with contextlib.suppress(Exception):
                await self.redis.delete(*(result_key_prefix + job_id for job_id in confirmed_jobs))
        report.delivered, report.enqueued_again = len(delivered), len(again)
        return report


def _consumers(row) -> tuple[str, ...]:
    spec = EVENT_TYPES.get(row["type"])
    return spec.consumers if spec is not None else ()
