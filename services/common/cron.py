"""Scheduled jobs with an exactly-once effect per tick, that catch up the ticks they missed.

arq's ``cron`` fires a job in every worker that has it (``unique=True`` only deduplicates in
Redis, best effort), and fires nothing while the workers are down. A :class:`ScheduledJob`
separates *when arq wakes the job* (often: every few minutes and at worker startup) from
*the ticks it owes* (its :class:`Schedule`: say, daily at 06:00 Asia/Shanghai). Each wake-up
runs every owed tick:

* the latest tick at or before now, and every tick after the newest finished one (the ticks
  missed while the workers were down), at most ``max_catch_up`` of them;
* a tick started but never finished whose lease ran out (its worker died half-way), or that
  failed, again (up to ``max_attempts``).

A tick is claimed by one row of the service's ``cron_run`` table (unique by job and tick):
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` the row is unfinished and its lease ran out, so
of several workers waking for the same tick one claims it and the others skip it. The body runs
in one transaction with the row marked finished: a worker killed half-way leaves nothing of its
work, and the tick is run again once its lease runs out. Bodies are idempotent anyway (alerts
are unique by key), so even a run that outlives its lease doubles nothing.

Usage, in a service's tasks.py::

    OVERSIGHT = ScheduledJob("oversight", Daily(time(6, 0)), run_detectors, CronRun)
    functions=[OVERSIGHT.function()], cron_jobs=[OVERSIGHT.cron()]
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any, Protocol

from arq import cron
from arq.cron import CronJob
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.dates import CHINA
from services.common.db import utcnow

log = logging.getLogger("platform.cron")

RUNNING, DONE, FAILED = "running", "done", "failed"
Body = Callable[[AsyncSession, datetime], Awaitable[Mapping[str, Any]]]


def cron_run_table(metadata: MetaData) -> Table:
    """One row per (job, tick): who runs it, until when its lease holds, how it ended."""
    return Table(
        "cron_run",
        metadata,
        Column("job", String(100), primary_key=True),
        Column("tick", DateTime(timezone=True), primary_key=True, comment="the scheduled instant"),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("lease_until", DateTime(timezone=True), nullable=False),
        Column("finished_at", DateTime(timezone=True)),
        Column("outcome", String(16), nullable=False, comment="running / done / failed"),
        Column("attempts", Integer, nullable=False),
        Column("worker", String(200)),
        Column("counts", JSONB, nullable=False, server_default="{}"),
        Column("error", String(2000)),
    )


class Schedule(Protocol):
    def latest(self, now: datetime) -> datetime:
        """The newest tick at or before ``now``."""

    def previous(self, tick: datetime) -> datetime:
        """The tick before ``tick``."""


@dataclass(frozen=True)
class Daily:
    """Once a day at ``at`` local time (Asia/Shanghai by default, which has no DST)."""

    at: time
    tz: tzinfo = CHINA

    def _on(self, day) -> datetime:
        return datetime.combine(day, self.at, tzinfo=self.tz)

    def latest(self, now: datetime) -> datetime:
        local = now.astimezone(self.tz)
        tick = self._on(local.date())
        return tick if tick <= local else self._on(local.date() - timedelta(days=1))

    def previous(self, tick: datetime) -> datetime:
        return self._on(tick.astimezone(self.tz).date() - timedelta(days=1))


@dataclass(frozen=True)
class Every:
    """Every ``interval`` from midnight UTC (an interval dividing a day: 15 minutes, an hour)."""

    interval: timedelta

    def latest(self, now: datetime) -> datetime:
        midnight = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
        return midnight + ((now - midnight) // self.interval) * self.interval

    def previous(self, tick: datetime) -> datetime:
        return tick - self.interval


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class ScheduledJob:
    name: str
    schedule: Schedule
    body: Body
    table: Table
    lease: timedelta = timedelta(minutes=15)
    max_catch_up: int = 31
    max_attempts: int = 5

    # --- which ticks are owed -------------------------------------------------------

    async def due_ticks(self, session: AsyncSession, now: datetime) -> list[datetime]:
        """The ticks to run now, oldest first (each still to be claimed)."""
        t = self.table
        latest = self.schedule.latest(now)
        anchor = (
            await session.exec(
                select(func.max(t.c.tick)).where(
                    t.c.job == self.name, t.c.finished_at.is_not(None), t.c.tick <= latest
                )
            )
        ).scalar()
        ticks: list[datetime] = []
        tick = latest
        while len(ticks) < self.max_catch_up and (anchor is None or tick > anchor):
            ticks.append(tick)
            if anchor is None:  # the job's first run: nothing was owed before it existed
                break
            tick = self.schedule.previous(tick)
        if anchor is not None and tick > anchor:
            log.warning(
                "scheduled job missed more ticks than it catches up",
                extra={"job": self.name, "since": anchor.isoformat(), "caught_up": len(ticks)},
            )
        # Started and never finished (the worker died), or failed: run again once the lease ran out.
        abandoned = (
            await session.exec(
                select(t.c.tick)
                .where(
                    t.c.job == self.name,
                    t.c.finished_at.is_(None),
                    t.c.lease_until < utcnow(),
                    t.c.attempts < self.max_attempts,
                    t.c.tick <= latest,
                )
                .order_by(t.c.tick.desc())
                .limit(self.max_catch_up)
            )
        ).scalars()
        return sorted(set(ticks) | set(abandoned))

    # --- claiming and running one tick -----------------------------------------------

    async def claim(self, session: AsyncSession, tick: datetime, worker: str) -> int | None:
        """Take the tick (a new row, or an unfinished one whose lease ran out): the attempt
        number, or None when another worker holds it, it is done, or it failed too often."""
        t = self.table
        started = utcnow()
        insert = pg_insert(t).values(
            job=self.name,
            tick=tick,
            started_at=started,
            lease_until=started + self.lease,
            outcome=RUNNING,
            attempts=1,
            worker=worker,
        )
        statement = insert.on_conflict_do_update(
            index_elements=[t.c.job, t.c.tick],
            set_={
                "started_at": insert.excluded.started_at,
                "lease_until": insert.excluded.lease_until,
                "outcome": RUNNING,
                "attempts": t.c.attempts + 1,
                "worker": insert.excluded.worker,
                "error": None,
            },
            # Unfinished, its lease run out, and not yet given up on (a tick failing every time
            # is left failed after ``max_attempts``, for people to look at).
            where=(t.c.finished_at.is_(None))
            & (t.c.lease_until < insert.excluded.started_at)
            & (t.c.attempts < self.max_attempts),
        ).returning(t.c.attempts)
        return (await session.exec(statement)).scalar()

    async def run_tick(self, sessionmaker: Callable[[], Any], tick: datetime, worker: str) -> str:
        """Claim and run one tick: ``done``, ``failed`` or ``skipped`` (held or finished elsewhere)."""
        t = self.table
        async with sessionmaker() as session:
            attempt = await self.claim(session, tick, worker)
            await session.commit()
        if attempt is None:
            return "skipped"
        mine = (t.c.job == self.name) & (t.c.tick == tick) & (t.c.attempts == attempt)
        try:
            async with sessionmaker() as session:
                counts = dict(await self.body(session, tick))
                # In the body's transaction: the work and "done" commit together or not at all.
                await session.exec(
                    update(t).where(mine).values(finished_at=utcnow(), outcome=DONE, counts=counts)
                )
                await session.commit()
        except Exception as exc:
            log.exception("scheduled job tick failed", extra={"job": self.name, "tick": tick.isoformat()})
            async with sessionmaker() as session:
                await session.exec(
                    update(t).where(mine).values(outcome=FAILED, error=repr(exc)[:2000], lease_until=utcnow())
                )
                await session.commit()
            return FAILED
        log.info("scheduled job tick done", extra={"job": self.name, "tick": tick.isoformat(), **counts})
        return DONE

    async def run(
        self, sessionmaker: Callable[[], Any], *, now: datetime | None = None, worker: str | None = None
    ) -> dict[str, list[str]]:
        """Run every owed tick; what became of each (``{"done": [...], "skipped": [...], ...}``)."""
        now = now or utcnow()
        worker = worker or worker_name()
        async with sessionmaker() as session:
            ticks = await self.due_ticks(session, now)
        report: dict[str, list[str]] = {}
        for tick in ticks:
            outcome = await self.run_tick(sessionmaker, tick, worker)
            report.setdefault(outcome, []).append(tick.isoformat())
        return report

    # --- arq ----------------------------------------------------------------------

    def function(self) -> Callable[..., Awaitable[dict[str, list[str]]]]:
        """The arq job: ``ctx["sessionmaker"]`` is the worker's; ``now`` is for tests."""

        async def run_scheduled(ctx: dict[str, Any], now: datetime | None = None) -> dict[str, list[str]]:
            worker = f"{worker_name()}:{ctx.get('job_id', '')}"
            return await self.run(ctx["sessionmaker"], now=now, worker=worker)

        run_scheduled.__name__ = run_scheduled.__qualname__ = self.name
        return run_scheduled

    def cron(self, minute: set[int] | None = None, **options: Any) -> CronJob:
        """arq's trigger: wake every quarter hour and at worker startup (catching up what was
        missed while the workers were down); the ticks owed are the schedule's, not arq's."""
        return cron(
            self.function(),
            name=f"cron:{self.name}",
            minute=minute if minute is not None else {0, 15, 30, 45},
            run_at_startup=options.pop("run_at_startup", True),
            unique=options.pop("unique", True),
            timeout=options.pop("timeout", self.lease.total_seconds()),
            **options,
        )
