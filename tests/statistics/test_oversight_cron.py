"""The oversight cron: each tick's effect happens once however many workers run it, the ticks
missed while the workers were down are caught up, and a tick whose worker died half-way is run
again without doubling anything.

Each test runs the oversight job under a name of its own (ticks are claimed per job name), so
its ticks and catch-up are its own in the run's shared database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
from arq.connections import RedisSettings
from arq.worker import Worker
from sqlalchemy import text

from services.common.cron import Daily, Every, ScheduledJob
from services.common.dates import CHINA
from services.common.db import make_engine, make_sessionmaker, utcnow
from services.common.jobs import deserialize_job, serialize_job
from services.statistics.models import CronRun
from services.statistics.oversight.cron import OVERSIGHT, OVERSIGHT_SCHEDULE, oversight_job
from services.statistics.oversight.detectors import (
    DETECTORS,
    cases_near_or_past_due,
    cases_without_two_officers,
    detectors_body,
    leads_near_or_past_due,
)
from services.statistics.tasks import WorkerSettings
from tests.statistics.oversight_helpers import (
    alerts_of,
    cron_runs,
    insert_case_fact,
    insert_lead_fact,
)

pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")


def at(day: date, hour: int = 6, minute: int = 0) -> datetime:
    """An Asia/Shanghai instant."""
    return datetime.combine(day, time(hour, minute), tzinfo=CHINA)


def job_name() -> str:
    return f"oversight-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
async def workers(database_urls_for_run) -> AsyncIterator[list]:
    """Two workers' sessionmakers, each on an engine of its own (separate connections, as two
    worker processes have)."""
    engines = [
        make_engine(database_urls_for_run["statistics"], pool_size=3, max_overflow=2) for _ in range(2)
    ]
    try:
        yield [make_sessionmaker(engine) for engine in engines]
    finally:
        for engine in engines:
            await engine.dispose()


def arq_ctx(sessionmaker, n: int) -> dict:
    """What an arq worker hands a job: its own sessionmaker and the job's id."""
    return {"sessionmaker": sessionmaker, "job_id": f"cron:oversight:{n}", "job_try": 1}


async def seed(sessionmaker, due: date) -> dict[str, list[int]]:
    """A lead and a case near their deadline, a lead and a case past it, one case with one officer,
    and rows that raise nothing (far deadline, ended case, decided lead, a review's deadline)."""
    async with sessionmaker() as session:
        rows = {
            "lead": [
                await insert_lead_fact(session, next_due=due + timedelta(days=2)),  # near
                await insert_lead_fact(session, next_due=due - timedelta(days=1)),  # past
                await insert_lead_fact(session, next_due=due + timedelta(days=20)),  # far
                await insert_lead_fact(session, next_due=due - timedelta(days=1), state="opened"),
            ],
            "case": [
                await insert_case_fact(
                    session, next_due=due + timedelta(days=3), next_due_rule="investigation"
                ),
                await insert_case_fact(session, next_due=due - timedelta(days=5), next_due_rule="decision"),
                await insert_case_fact(session, officer_count=1, state="under_review"),
                await insert_case_fact(
                    session, next_due=due - timedelta(days=5), state="closed", officer_count=1
                ),
                await insert_case_fact(session, officer_count=1, state="opened"),
                # Its review's deadline: the legal-affairs review detector's, not this one's.
                await insert_case_fact(
                    session, next_due=due - timedelta(days=1), next_due_rule="review", state="under_review"
                ),
            ],
        }
        await session.commit()
    return rows


async def keys(sessionmaker, rows) -> list[str]:
    async with sessionmaker() as session:
        found = [
            *await alerts_of(session, "lead", rows["lead"]),
            *await alerts_of(session, "case", rows["case"]),
        ]
    return sorted(a["key"] for a in found)


def expected_keys(rows, due: date) -> list[str]:
    lead, case = rows["lead"], rows["case"]
    return sorted(
        [
            f"lead_deadline:lead:{lead[0]}:near:{due + timedelta(days=2)}",
            f"lead_deadline:lead:{lead[1]}:past:{due - timedelta(days=1)}",
            f"case_deadline:case:{case[0]}:investigation:near:{due + timedelta(days=3)}",
            f"case_deadline:case:{case[1]}:decision:past:{due - timedelta(days=5)}",
            f"case_officers:case:{case[2]}",
        ]
    )


# --- the schedule -------------------------------------------------------------------


def test_the_daily_schedule_ticks_at_its_local_time():
    schedule = Daily(time(6, 0))
    assert schedule.latest(at(date(2026, 6, 10), 6, 0)) == at(date(2026, 6, 10))
    assert schedule.latest(at(date(2026, 6, 10), 5, 59)) == at(date(2026, 6, 9))
    # 23:00 UTC is already the next day in Asia/Shanghai.
    assert schedule.latest(datetime(2026, 6, 9, 23, 0, tzinfo=UTC)) == at(date(2026, 6, 10))
    assert schedule.previous(at(date(2026, 3, 1))) == at(date(2026, 2, 28))
    every = Every(timedelta(minutes=15))
    assert every.latest(datetime(2026, 6, 9, 10, 44, 59, tzinfo=UTC)) == datetime(
        2026, 6, 9, 10, 30, tzinfo=UTC
    )


def test_the_worker_runs_the_oversight_job_at_startup_and_every_quarter_hour():
    (job,) = [c for c in WorkerSettings.cron_jobs if c.name == "cron:oversight"]
    assert job.run_at_startup and job.unique
    assert job.minute == {0, 15, 30, 45}
    assert OVERSIGHT.schedule == OVERSIGHT_SCHEDULE
    assert "oversight" in [getattr(f, "name", None) or f.__name__ for f in WorkerSettings.functions]


# --- exactly once ---------------------------------------------------------------------


async def test_two_workers_running_the_same_tick_raise_each_alert_once(workers):
    first, second = workers
    day = date(2026, 6, 10)
    rows = await seed(first, day)
    job = oversight_job(job_name())
    run = job.function()

    reports = await asyncio.gather(
        run(arq_ctx(first, 1), now=at(day, 6, 1)), run(arq_ctx(second, 2), now=at(day, 6, 1))
    )

    tick = at(day).isoformat()
    # One ran it; the other found it claimed (skipped) or already done (nothing owed).
    other = next(r for r in reports if r != {"done": [tick]})
    assert other in ({}, {"skipped": [tick]})
    assert [r.get("done") for r in reports].count([tick]) == 1
    assert await keys(first, rows) == expected_keys(rows, day)
    async with first() as session:
        (row,) = await cron_runs(session, job.name)
    assert (row["outcome"], row["attempts"], row["tick"]) == ("done", 1, at(day))
    assert set(row["counts"]) == {d.__name__ for d in DETECTORS}
    assert row["finished_at"] is not None

    # A worker waking again for the same tick (the next quarter hour) finds nothing owed.
    assert await run(arq_ctx(second, 3), now=at(day, 6, 15)) == {}
    assert await keys(first, rows) == expected_keys(rows, day)


async def test_detectors_run_twice_at_once_still_raise_each_alert_once(workers):
    """Even without the claim (a tick re-run after its lease ran out while the first run still
    went on), the alerts are unique by key: two runs at once raise each alert once."""
    first, second = workers
    day = date(2026, 6, 11)
    rows = await seed(first, day)
    body = detectors_body()

    async def run_body(sessionmaker) -> dict:
        async with sessionmaker() as session:
            counts = await body(session, at(day))
            await session.commit()
        return counts

    await asyncio.gather(run_body(first), run_body(second))
    assert await keys(first, rows) == expected_keys(rows, day)
    await run_body(first)
    assert await keys(first, rows) == expected_keys(rows, day)


async def test_two_arq_workers_on_redis_catch_up_at_startup_and_raise_each_alert_once(workers):
    """Two real arq workers with the oversight cron, started together after the workers were
    down for a day: each fires the job at startup, the missed tick and today's are run once
    each (one worker claims a tick, the other skips it), and each alert is raised once."""
    first, second = workers
    now = utcnow()
    latest = OVERSIGHT_SCHEDULE.latest(now)
    day = latest.astimezone(CHINA).date()
    rows = await seed(first, day)
    job = oversight_job(job_name())
    async with first() as session:  # the last tick run before the workers went down
        await session.exec(
            CronRun.insert().values(
                job=job.name,
                tick=OVERSIGHT_SCHEDULE.previous(OVERSIGHT_SCHEDULE.previous(latest)),
                started_at=now - timedelta(days=2),
                lease_until=now - timedelta(days=2),
                finished_at=now - timedelta(days=2),
                outcome="done",
                attempts=1,
            )
        )
        await session.commit()
    queue = f"{os.environ['ARQ_QUEUE_PREFIX']}oversight-test:{uuid.uuid4().hex[:8]}"

    def worker(sessionmaker) -> Worker:
        return Worker(
            functions=[],
            # By the clock only half an hour away: within the test, at startup only.
            cron_jobs=[job.cron(minute={(now.minute + 30) % 60})],
            queue_name=queue,
            redis_settings=RedisSettings.from_dsn(os.environ["REDIS_URL"]),
            job_serializer=serialize_job,
            job_deserializer=deserialize_job,
            poll_delay=0.05,
            handle_signals=False,
            ctx={"sessionmaker": sessionmaker},
        )

    arq_workers = [worker(first), worker(second)]
    tasks = [asyncio.create_task(arq_workers[0].main())]
    # A few milliseconds apart, as two processes start: arq's job ids (the startup instant)
    # differ, so Redis lets both jobs through and only the claims keep the effect single.
    await asyncio.sleep(0.05)
    tasks.append(asyncio.create_task(arq_workers[1].main()))
    try:
        for _ in range(300):
            if sum(w.jobs_complete + w.jobs_failed for w in arq_workers) >= 2:
                break
            await asyncio.sleep(0.05)
        # Both jobs ran (either worker may take either job from the shared queue).
        assert sum(w.jobs_complete for w in arq_workers) == 2
        assert sum(w.jobs_failed for w in arq_workers) == 0
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for w in arq_workers:
            with contextlib.suppress(Exception):
                await w.close()

    async with first() as session:
        runs = await cron_runs(session, job.name)
    assert [(r["tick"], r["outcome"], r["attempts"]) for r in runs[1:]] == [
        (OVERSIGHT_SCHEDULE.previous(latest), "done", 1),
        (latest, "done", 1),
    ]
    # Yesterday's tick found the lead due yesterday near (due that day); today's, past.
    caught_up = f"lead_deadline:lead:{rows['lead'][1]}:near:{day - timedelta(days=1)}"
    assert await keys(first, rows) == sorted([*expected_keys(rows, day), caught_up])


# --- catching up --------------------------------------------------------------------


async def test_the_ticks_missed_while_the_workers_were_down_are_caught_up(workers):
    first, _ = workers
    job = oversight_job(job_name(), [leads_near_or_past_due])
    last = date(2026, 6, 1)
    async with first() as session:
        # The last tick that ran before the workers went down.
        await session.exec(
            CronRun.insert().values(
                job=job.name,
                tick=at(last),
                started_at=utcnow() - timedelta(days=3),
                lease_until=utcnow() - timedelta(days=3),
                finished_at=utcnow() - timedelta(days=3),
                outcome="done",
                attempts=1,
            )
        )
        # Due on the 3rd: near for the ticks of the 2nd and 3rd, past for the 4th's.
        lead = await insert_lead_fact(session, next_due=date(2026, 6, 3))
        await session.commit()

    # The workers come back on the 4th at 09:00: the ticks of the 2nd, 3rd and 4th are owed.
    report = await job.function()(arq_ctx(first, 1), now=at(date(2026, 6, 4), 9))

    assert report == {"done": [at(date(2026, 6, d)).isoformat() for d in (2, 3, 4)]}
    async with first() as session:
        runs = await cron_runs(session, job.name)
        alerts = await alerts_of(session, "lead", [lead])
    assert [(r["tick"], r["outcome"]) for r in runs] == [(at(date(2026, 6, d)), "done") for d in (1, 2, 3, 4)]
    assert [(a["severity"], a["details"]["as_of"]) for a in alerts] == [
        ("near", "2026-06-02"),  # raised by the first caught-up tick
        ("past", "2026-06-04"),
    ]
    # Nothing more is owed until the next tick.
    assert await job.function()(arq_ctx(first, 2), now=at(date(2026, 6, 5), 5)) == {}
    assert await job.function()(arq_ctx(first, 3), now=at(date(2026, 6, 5), 6)) == {
        "done": [at(date(2026, 6, 5)).isoformat()]
    }


async def test_catching_up_stops_at_its_limit_and_a_new_job_starts_at_its_latest_tick(workers):
    first, _ = workers
    fresh = oversight_job(job_name(), [])
    # A job that never ran owes only its latest tick, not every day since the epoch.
    assert await fresh.function()(arq_ctx(first, 1), now=at(date(2026, 6, 20), 7)) == {
        "done": [at(date(2026, 6, 20)).isoformat()]
    }
    limited = ScheduledJob(fresh.name, Daily(time(6, 0)), detectors_body([]), CronRun, max_catch_up=3)
    report = await limited.run(first, now=at(date(2026, 7, 20), 7))
    assert report == {"done": [at(date(2026, 7, d)).isoformat() for d in (18, 19, 20)]}


# --- a worker dying half-way ------------------------------------------------------------


async def test_a_worker_killed_half_way_is_run_again_without_doubling(workers):
    first, second = workers
    day = date(2026, 6, 15)
    async with first() as session:
        lead = await insert_lead_fact(session, next_due=day - timedelta(days=2))
        case = await insert_case_fact(session, officer_count=1)
        await session.commit()

    halfway = asyncio.Event()

    async def hangs(session, as_of) -> int:
        halfway.set()  # the lead and case alerts are inserted (not committed) by now
        await asyncio.Event().wait()
        return 0

    name = job_name()
    dying = oversight_job(name, [leads_near_or_past_due, cases_without_two_officers, hangs])
    task = asyncio.create_task(dying.run(first, now=at(day, 7)))
    await asyncio.wait_for(halfway.wait(), 10)
    task.cancel()  # the worker is killed: its transaction never commits
    with contextlib.suppress(asyncio.CancelledError):
        await task

    async with second() as session:
        (row,) = await cron_runs(session, name)
        assert await alerts_of(session, "lead", [lead]) == []
    assert (row["outcome"], row["finished_at"], row["attempts"]) == ("running", None, 1)

    healthy = oversight_job(
        name, [leads_near_or_past_due, cases_without_two_officers, cases_near_or_past_due]
    )
    # While its lease holds, another worker leaves the tick alone (the first may still be at it).
    assert await healthy.run(second, now=at(day, 7, 15)) == {"skipped": [at(day).isoformat()]}

    async with second() as session:  # the lease runs out
        await session.exec(
            text("UPDATE cron_run SET lease_until = now() - interval '1 second' WHERE job = :j"),
            params={"j": name},
        )
        await session.commit()
    assert await healthy.run(second, now=at(day, 7, 30)) == {"done": [at(day).isoformat()]}

    async with second() as session:
        (row,) = await cron_runs(session, name)
        lead_alerts = await alerts_of(session, "lead", [lead])
        case_alerts = await alerts_of(session, "case", [case])
    assert (row["outcome"], row["attempts"]) == ("done", 2)
    assert [a["key"] for a in lead_alerts] == [f"lead_deadline:lead:{lead}:past:{day - timedelta(days=2)}"]
    assert [a["key"] for a in case_alerts] == [f"case_officers:case:{case}"]
    # Once done, the tick is never run again.
    assert await healthy.run(second, now=at(day, 8)) == {}


# A worker process that runs the oversight job and hangs half-way, after the lead detector.
DYING_WORKER = """
import asyncio, sys
from datetime import datetime
from services.common.db import make_engine, make_sessionmaker
from services.statistics.config import get_settings
from services.statistics.oversight.cron import oversight_job
from services.statistics.oversight.detectors import leads_near_or_past_due

async def hangs(session, as_of):
    print("halfway", flush=True)
    await asyncio.sleep(3600)
    return 0

async def main():
    engine = make_engine(get_settings().database_url)
    job = oversight_job(sys.argv[1], [leads_near_or_past_due, hangs])
    await job.run(make_sessionmaker(engine), now=datetime.fromisoformat(sys.argv[2]))

asyncio.run(main())
"""


async def test_a_worker_process_killed_half_way_leaves_nothing_and_its_tick_runs_again(workers):
    first, _ = workers
    day = date(2026, 6, 19)
    async with first() as session:
        lead = await insert_lead_fact(session, next_due=day - timedelta(days=1))
        await session.commit()
    name = job_name()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DYING_WORKER,
        name,
        at(day, 6, 30).isoformat(),
        stdout=asyncio.subprocess.PIPE,
        cwd=os.getcwd(),
    )
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line.strip() == b"halfway"
    finally:
        process.kill()  # SIGKILL: no clean-up of any kind
        await process.wait()

    async with first() as session:
        (row,) = await cron_runs(session, name)
        assert await alerts_of(session, "lead", [lead]) == []  # its transaction died with it
        await session.exec(
            text("UPDATE cron_run SET lease_until = now() - interval '1 second' WHERE job = :j"),
            params={"j": name},
        )
        await session.commit()
    assert (row["outcome"], row["attempts"]) == ("running", 1)

    job = oversight_job(name, [leads_near_or_past_due])
    assert await job.run(first, now=at(day, 6, 45)) == {"done": [at(day).isoformat()]}
    assert await job.run(first, now=at(day, 7)) == {}
    async with first() as session:
        (row,) = await cron_runs(session, name)
        alerts = await alerts_of(session, "lead", [lead])
    assert (row["outcome"], row["attempts"]) == ("done", 2)
    assert [a["key"] for a in alerts] == [f"lead_deadline:lead:{lead}:past:{day - timedelta(days=1)}"]


async def test_alerts_a_dead_worker_had_raised_are_not_raised_again(workers):
    """Had a dead worker's alerts reached the table (a body committing as it goes), its re-run
    would find them there and raise nothing twice."""
    first, _ = workers
    day = date(2026, 6, 16)
    async with first() as session:
        lead = await insert_lead_fact(session, next_due=day + timedelta(days=1))
        assert await leads_near_or_past_due(session, day) >= 1
        await session.commit()
    job = oversight_job(job_name(), [leads_near_or_past_due])
    assert await job.run(first, now=at(day, 6, 5)) == {"done": [at(day).isoformat()]}
    async with first() as session:
        alerts = await alerts_of(session, "lead", [lead])
    assert [a["severity"] for a in alerts] == ["near"]


async def test_a_failed_tick_is_retried_and_records_its_error(workers):
    first, _ = workers
    day = date(2026, 6, 17)
    calls = []

    async def flaky(session, as_of) -> int:
        calls.append(as_of)
        if len(calls) == 1:
            raise RuntimeError("the database said no")
        return 0

    job = oversight_job(job_name(), [flaky])
    assert await job.run(first, now=at(day, 6, 1)) == {"failed": [at(day).isoformat()]}
    async with first() as session:
        (row,) = await cron_runs(session, job.name)
    assert (row["outcome"], row["finished_at"]) == ("failed", None)
    assert "the database said no" in row["error"]
    # The next wake-up runs the failed tick again.
    assert await job.run(first, now=at(day, 6, 16)) == {"done": [at(day).isoformat()]}
    async with first() as session:
        (row,) = await cron_runs(session, job.name)
    assert (row["outcome"], row["attempts"], row["error"]) == ("done", 2, None)
    assert calls == [day, day]


# --- the detectors' keys ------------------------------------------------------------------


async def test_a_later_deadline_raises_a_new_alert_and_a_repeated_run_none(workers):
    first, _ = workers
    day = date(2026, 6, 18)
    async with first() as session:
        case = await insert_case_fact(
            session, next_due=day + timedelta(days=1), next_due_rule="investigation"
        )
        await cases_near_or_past_due(session, day)
        await cases_near_or_past_due(session, day)
        # The deadline is extended: a new one, a new alert.
        await session.exec(
            text("UPDATE case_fact SET next_due = :d WHERE case_id = :c"),
            params={"d": day + timedelta(days=3), "c": case},
        )
        await cases_near_or_past_due(session, day + timedelta(days=1))
        alerts = await alerts_of(session, "case", [case])
        await session.commit()
    assert [(a["severity"], a["due"]) for a in alerts] == [
        ("near", day + timedelta(days=1)),
        ("near", day + timedelta(days=3)),
    ]
    assert "investigation" in alerts[0]["details"]["rule"]


async def test_a_tick_failing_every_time_is_given_up_after_its_attempts(workers):
    first, _ = workers
    day = date(2026, 6, 22)

    async def broken(session, as_of) -> int:
        raise RuntimeError("a bug")

    job = ScheduledJob(job_name(), Daily(time(6, 0)), detectors_body([broken]), CronRun, max_attempts=2)
    assert await job.run(first, now=at(day, 6, 1)) == {"failed": [at(day).isoformat()]}
    assert await job.run(first, now=at(day, 6, 16)) == {"failed": [at(day).isoformat()]}
    # Given up on: left failed (with its error) for people to look at, not retried forever.
    assert await job.run(first, now=at(day, 6, 31)) == {"skipped": [at(day).isoformat()]}
    async with first() as session:
        (row,) = await cron_runs(session, job.name)
    assert (row["outcome"], row["attempts"], row["finished_at"]) == ("failed", 2, None)
    assert "a bug" in row["error"]
