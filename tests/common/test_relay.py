"""The relay and the consumers against real PostgreSQL and a Redis of this module's own.

The Redis is a private ``redis-server`` (no persistence, like the platform's) on a free
port, so it can be stopped and restarted without touching the one other test runs
share. The producer has a scratch database of its own, migrated like a service's, so the
relay here sees only this module's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from arq.connections import RedisSettings
from arq.constants import result_key_prefix
from arq.jobs import Job, JobStatus
from arq.worker import Worker, func
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import make_engine, make_sessionmaker
from services.common.event_schemas import CertificateStatusChanged
from services.common.jobs import create_job_pool, deserialize_job, handle_event, serialize_job
from services.common.migrations import upgrade
from services.common.outbox import Inbox, Outbox, Outcome
from services.common.relay import HANDLE_EVENT, Relay, event_job_id
from services.registry.models import InboxEvent, OutboxEvent
from tests.conftest import RUN_ID
from tests.servers import RedisServer
from tools.platform import create_databases, drop_databases

pytestmark = [
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
    # arq 0.28 closes its pool with redis-py's deprecated close().
    pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning"),
]

STATUS_CHANGED = "registry.certificate.status_changed"
CONSUMERS = ("enforcement", "statistics")  # the catalogue's consumers of STATUS_CHANGED
PREFIX = f"arq:{RUN_ID}:relay:"
OUTBOX = Outbox(OutboxEvent, "registry")
INBOX = Inbox(InboxEvent)


class Consumer:
    """One consuming service's worker, restarted whenever it exits (as `make run` does)."""

    def __init__(self, name: str, redis_url: str, engine: AsyncEngine) -> None:
        self.name = name
        self.redis_url = redis_url
        self.sessionmaker = make_sessionmaker(engine)
        self.fail_first: set[uuid.UUID] = set()  # events whose first try raises (a bug, then fixed)
        self.crashes: list[BaseException] = []
        self.current: Worker | None = None
        self._task: asyncio.Task | None = None

    async def connected(self) -> bool:
        """The running worker has its Redis pool (a job could reach it now)."""
        return self.current is not None and getattr(self.current, "_pool", None) is not None

    async def apply(self, session, event) -> Outcome:
        if event.id in self.fail_first:
            self.fail_first.discard(event.id)
            raise LookupError(f"no certificate {event.payload['number']} yet")
        await session.exec(
            text("INSERT INTO relay_test_effect (event_id, version) VALUES (:id, :v)"),
            params={"id": event.id, "v": event.aggregate_version},
        )
        return Outcome.applied()

    def worker(self) -> Worker:
        return Worker(
            functions=[func(handle_event, name=HANDLE_EVENT, max_tries=10)],
            queue_name=f"{PREFIX}{self.name}",
            redis_settings=RedisSettings.from_dsn(self.redis_url),
            job_serializer=serialize_job,
            job_deserializer=deserialize_job,
            poll_delay=0.05,
            handle_signals=False,
            ctx={
                "service": self.name,
                "sessionmaker": self.sessionmaker,
                "inbox": INBOX,
                "event_handlers": {STATUS_CHANGED: self.apply},
            },
        )

    async def _supervise(self) -> None:
        while True:
            worker = self.current = self.worker()
            try:
                await worker.main()
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await worker.close()
                raise
            except Exception as exc:  # Redis went away: the worker exits, and is started again
                self.crashes.append(exc)
                await asyncio.sleep(0.2)

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def scratch_database(name: str) -> str:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_{RUN_ID}_scratch_relay_{name}"
    await drop_databases({name: url})
    await create_databases({name: url})
    await asyncio.to_thread(upgrade, "statistics", url)  # the outbox and inbox every part has
    return url


@pytest.fixture(scope="module")
async def redis_server() -> AsyncIterator[RedisServer]:
    server = RedisServer()
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture(scope="module")
async def databases(database_urls_for_run) -> AsyncIterator[dict[str, AsyncEngine]]:
    """The producer's database is this module's alone (the relay takes every pending row);
    the consumers are the run's own services' databases (inboxes are keyed by event id)."""
    producer = await scratch_database("producer")
    engines = {
        "producer": make_engine(producer, pool_size=5, max_overflow=5),
        # The test's own writes and reads, apart from the engine the relay uses.
        "writer": make_engine(producer, pool_size=2, max_overflow=2),
        **{name: make_engine(database_urls_for_run[name], pool_size=5, max_overflow=5) for name in CONSUMERS},
    }
    for name in CONSUMERS:
        async with engines[name].begin() as conn:
            await conn.execute(
                text("CREATE TABLE IF NOT EXISTS relay_test_effect (event_id uuid NOT NULL, version bigint)")
            )
    try:
        yield engines
    finally:
        for engine in engines.values():
            await engine.dispose()
        await drop_databases({"producer": producer})


@pytest.fixture
async def ready(redis_server, databases) -> AsyncIterator[Setting]:
    """A clean slate: Redis up and empty, no events, no consumers running."""
    if redis_server.process is None:
        await asyncio.to_thread(redis_server.start)
    setting = await Setting(redis_server, databases).connect()
    await setting.pool.flushall()
    async with databases["producer"].begin() as conn:
        await conn.execute(text("DELETE FROM outbox_event"))
    try:
        yield setting
    finally:
        await setting.close()


class Setting:
    def __init__(self, redis_server: RedisServer, engines: dict[str, AsyncEngine]) -> None:
        self.redis = redis_server
        self.engines = engines
        self.producer = make_sessionmaker(engines["writer"])
        self.consumers = {name: Consumer(name, redis_server.url, engines[name]) for name in CONSUMERS}
        self.pool = None
        self.relay_task: asyncio.Task | None = None

    async def connect(self) -> Setting:
        self.pool = await create_job_pool(self.redis.url)
        return self

    def relay(self, **options) -> Relay:
        options = {"queue_prefix": PREFIX, "confirm_after": 0.3, "sweep_interval": 0.2, **options}
        return Relay(self.engines["producer"], OUTBOX, self.pool, **options)

    def run_relay(self, **options) -> Relay:
        relay = self.relay(**options)
        self.relay_task = asyncio.create_task(relay.run())
        return relay

    def start_consumers(self) -> None:
        for consumer in self.consumers.values():
            consumer.start()

    async def emit(self, session, aggregate_id: str | None = None, version: int = 1):
        return await OUTBOX.emit(
            session,
            STATUS_CHANGED,
            aggregate_type="certificate",
            aggregate_id=aggregate_id or uuid.uuid4().hex[:16],
            aggregate_version=version,
            bureau_id=8,
            bureau_path="1.8.",
            payload=CertificateStatusChanged(
                certificate_id=7,
                number="CQC2024010101000001",
                scheme="CCC",
                from_status="valid",
                to_status="suspended",
                reason="non-compliant sample",
                changed_at=datetime(2026, 11, 29, 8, 0, tzinfo=UTC),
            ),
        )

    async def committed(self, count: int = 1) -> list:
        async with self.producer() as session:
            events = [await self.emit(session) for _ in range(count)]
            await session.commit()
        return events

    async def row(self, event_id) -> dict:
        async with self.engines["writer"].connect() as conn:
            query = text("SELECT * FROM outbox_event WHERE id = :id")
            return dict((await conn.execute(query, {"id": event_id})).mappings().one())

    async def applied(self, consumer: str, event_id) -> tuple[int, str | None]:
        """(times the effect was applied, the inbox outcome) of an event at a consumer."""
        async with self.engines[consumer].connect() as conn:
            effects = (
                await conn.execute(
                    text("SELECT count(*) FROM relay_test_effect WHERE event_id = :id"), {"id": event_id}
                )
            ).scalar_one()
            outcome = (
                await conn.execute(
                    text("SELECT outcome FROM inbox_event WHERE event_id = :id"), {"id": event_id}
                )
            ).scalar()
        return effects, outcome

    async def wait_applied(self, event_ids, timeout: float = 15.0) -> None:
        async def everywhere() -> bool:
            for consumer in CONSUMERS:
                for event_id in event_ids:
                    if (await self.applied(consumer, event_id))[1] is None:
                        return False
            return True

        await until(everywhere, timeout)

    def job(self, consumer: str, event_id) -> Job:
        return Job(
            event_job_id(consumer, event_id),
            self.pool,
            _queue_name=f"{PREFIX}{consumer}",
            _deserializer=deserialize_job,
        )

    async def close(self) -> None:
        if self.relay_task is not None:
            self.relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.relay_task
        for consumer in self.consumers.values():
            await consumer.stop()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await self.pool.aclose()


async def until(condition, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(0.05)


class TestRelaying:
    async def test_each_event_goes_to_each_consumer_once_under_its_own_job_id(self, ready):
        [event] = await ready.committed()
        relay = ready.relay()
        assert await relay.relay_once() == 1
        for consumer in CONSUMERS:
            job = ready.job(consumer, event.id)
            assert await job.status() == JobStatus.queued
            info = await job.info()
            assert (info.function, info.args[0]["id"], info.args[0]["type"]) == (
                HANDLE_EVENT,
                str(event.id),
                STATUS_CHANGED,
            )
        row = await ready.row(event.id)
        assert (row["attempts"], row["delivered_at"]) == (1, None)
        assert row["enqueued_at"] is not None
        assert await relay.relay_once() == 0  # claimed once, never again

        ready.start_consumers()
        await ready.wait_applied([event.id])
        for consumer in CONSUMERS:
            assert await ready.applied(consumer, event.id) == (1, "applied")

        await asyncio.sleep(relay.confirm_after)
        report = await relay.sweep_once()
        assert (report.delivered, report.enqueued_again) == (1, 0)
        row = await ready.row(event.id)
        assert row["delivered_at"] is not None and row["last_error"] is None
        # Confirmed: arq's results are dropped, the inbox keeps the record.
        assert [await ready.job(c, event.id).status() for c in CONSUMERS] == [JobStatus.not_found] * 2

    async def test_an_event_committed_after_a_later_one_is_not_skipped(self, ready):
        relay = ready.relay()
        async with ready.producer() as early, ready.producer() as late:
            first = await ready.emit(early)  # tx A: emitted first, still open
            second = await ready.emit(late)  # tx B: emitted later, committed first
            await late.commit()
            assert await relay.relay_once() == 1
            assert (await ready.row(second.id))["enqueued_at"] is not None
            await early.commit()
        assert first.occurred_at < second.occurred_at
        assert await relay.relay_once() == 1
        for consumer in CONSUMERS:
            assert await ready.job(consumer, first.id).status() == JobStatus.queued
            assert await ready.job(consumer, second.id).status() == JobStatus.queued

    async def test_batches_larger_than_one_claim_are_all_delivered_once(self, ready):
        events = await ready.committed(120)
        ready.run_relay(batch_size=25)
        ready.start_consumers()
        await ready.wait_applied([e.id for e in events], timeout=30)
        for consumer in CONSUMERS:
            for event in events:
                assert await ready.applied(consumer, event.id) == (1, "applied")

    async def test_a_commit_wakes_the_relay_without_waiting_for_the_poll(self, ready):
        ready.run_relay(poll_interval=30)
        await asyncio.sleep(0.5)  # the relay has looked once and now waits
        [event] = await ready.committed()

        async def enqueued() -> bool:
            return (await ready.row(event.id))["enqueued_at"] is not None

        await until(enqueued, timeout=3)


class TestConsumers:
    async def test_a_consumer_that_was_down_gets_the_event_when_it_comes_back(self, ready):
        relay = ready.run_relay()
        [event] = await ready.committed()

        async def enqueued() -> bool:
            return (await ready.row(event.id))["enqueued_at"] is not None

        await until(enqueued)
        await asyncio.sleep(relay.confirm_after * 3)  # sweeps pass: a queued job is left alone
        assert await ready.applied("enforcement", event.id) == (0, None)
        assert (await ready.row(event.id))["attempts"] == 1
        ready.start_consumers()
        await ready.wait_applied([event.id])
        for consumer in CONSUMERS:
            assert await ready.applied(consumer, event.id) == (1, "applied")

        async def delivered() -> bool:
            return (await ready.row(event.id))["delivered_at"] is not None

        await until(delivered)

    async def test_the_same_event_delivered_twice_applies_once(self, ready):
        relay = ready.relay()
        [event] = await ready.committed()
        await relay.relay_once()
        ready.start_consumers()
        await ready.wait_applied([event.id])
        # Delivered again, as after a lost confirmation: the job runs, the inbox says "seen".
        for consumer in CONSUMERS:
            await ready.pool.delete(result_key_prefix + event_job_id(consumer, event.id))
        row = await ready.row(event.id)
        await relay._enqueue([(consumer, row) for consumer in CONSUMERS])
        for consumer in CONSUMERS:
            result = await ready.job(consumer, event.id).result(timeout=10, poll_delay=0.05)
            assert result == {"event_id": str(event.id), "outcome": "duplicate"}
            assert await ready.applied(consumer, event.id) == (1, "applied")

    async def test_a_failed_job_is_enqueued_again_and_applies_after(self, ready):
        relay = ready.relay()
        [event] = await ready.committed()
        ready.consumers["statistics"].fail_first.add(event.id)
        await relay.relay_once()
        ready.start_consumers()

        async def failed() -> bool:
            info = await ready.job("statistics", event.id).result_info()
            return info is not None and info.success is False

        await until(failed)
        await asyncio.sleep(relay.confirm_after)
        report = await relay.sweep_once()
        assert report.enqueued_again == 1  # only the consumer that failed
        row = await ready.row(event.id)
        assert row["attempts"] == 2
        assert row["last_error"] == "statistics: LookupError('no certificate CQC2024010101000001 yet')"
        await ready.wait_applied([event.id])
        for consumer in CONSUMERS:
            assert await ready.applied(consumer, event.id) == (1, "applied")


class TestFaults:
    async def test_redis_restarted_between_commit_and_relay_loses_nothing(self, ready):
        relay = ready.run_relay(max_backoff=0.5)
        ready.start_consumers()
        for consumer in ready.consumers.values():  # connected first: the outage then reaches them
            await until(consumer.connected)
        await asyncio.to_thread(ready.redis.stop)
        events = await ready.committed(3)

        async def failing() -> bool:
            return relay.failures >= 2

        await until(failing)
        assert not ready.relay_task.done()  # it waits the outage out
        assert [(await ready.row(e.id))["enqueued_at"] for e in events] == [None] * 3
        await asyncio.to_thread(ready.redis.start)
        await ready.wait_applied([e.id for e in events], timeout=30)
        for consumer in CONSUMERS:
            for event in events:
                assert await ready.applied(consumer, event.id) == (1, "applied")
        assert relay.failures == 0
        assert ready.consumers["enforcement"].crashes  # the workers did exit, and came back

    async def test_a_queued_job_lost_in_a_redis_restart_is_delivered_by_the_sweep(self, ready):
        relay = ready.relay()
        [event] = await ready.committed()
        await relay.relay_once()
        await asyncio.to_thread(ready.redis.restart)  # the queue is gone with it
        assert [await ready.job(c, event.id).status() for c in CONSUMERS] == [JobStatus.not_found] * 2
        await asyncio.sleep(relay.confirm_after)
        report = await relay.sweep_once()
        assert report.enqueued_again == 2
        row = await ready.row(event.id)
        assert row["attempts"] == 2
        assert (
            row["last_error"] == "enforcement: job lost from the queue; statistics: job lost from the queue"
        )
        ready.start_consumers()
        await ready.wait_applied([event.id])
        for consumer in CONSUMERS:
            assert await ready.applied(consumer, event.id) == (1, "applied")
        await asyncio.sleep(relay.confirm_after * 2)  # the second attempt waits twice as long
        assert (await relay.sweep_once()).delivered == 1

    async def test_the_relay_rides_out_dropped_database_connections(self, ready):
        relay = ready.run_relay(max_backoff=0.5)
        [before] = await ready.committed()
        await until(lambda: _enqueued(ready, before.id))
        # Every connection of the producer's database dropped: the relay's pool and listener.
        async with ready.engines["enforcement"].connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": ready.engines["producer"].url.database},
            )
            await conn.commit()
        await ready.engines["writer"].dispose()  # the test's own connections were dropped too
        [after] = await ready.committed()
        await until(lambda: _enqueued(ready, after.id))
        assert not ready.relay_task.done()

        async def recovered() -> bool:
            return relay.failures == 0

        await until(recovered)


async def _enqueued(ready: Setting, event_id) -> bool:
    return (await ready.row(event_id))["enqueued_at"] is not None
